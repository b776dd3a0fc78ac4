"""Training step time: plain DPO vs DPO + SENA's ICA term vs DPO + mDPO's terms (target: ICA <= 1.1x plain).

Run: .venv/bin/python bench/train_step.py [--steps 20] [--batch 4]
The same tiny LLaVA (built offline), the same batch of pairs, full fine-tuning with a frozen reference copy. A step
is what the trainer does per batch: the loss (policy and reference forwards, every term) and its backward pass;
the time is the median over ``--steps`` steps after two warm-up steps, the settings taking turns step by step. ICA
reuses the policy's log-probs, so it
should cost next to nothing; mDPO's conditional term needs the chosen answers on the cropped images, i.e. one more
policy and one more reference forward.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import datasets
    import torch
    from PIL import Image

    from prefgen.models.tiny.families import build_tiny_vlm
    from prefgen.recipe.training import MdpoSettings, TrainConfig
    from prefgen.train.run import _make_trainer

    torch.manual_seed(0)
    rows = [
        {
            "images": [Image.new("RGB", (64, 48), (40 * i % 256, 90, 160))],
            "prompt": [{"role": "user", "content": f"Describe picture {i} in detail."}],
            "chosen": [{"role": "assistant", "content": f"A blue square and a red circle, number {i}."}],
            "rejected": [{"role": "assistant", "content": f"A green dog sitting on a chair, number {i}."}],
            "question_source": "description" if i % 2 else "self_question",
        }
        for i in range(args.batch)
    ]
    data = datasets.Dataset.from_list(rows).cast_column("images", datasets.List(datasets.Image()))
    settings = {"plain DPO": {}, "DPO + ICA": {"ica_weight": 1.0}, "DPO + mDPO": {"mdpo": MdpoSettings()}}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_vlm("llava", Path(tmp) / "llava")
        runs = {}
        for name, extra in settings.items():
            config = TrainConfig(lora=None, batch_size=args.batch, **extra)
            trainer, _ = _make_trainer(data, str(model_dir), Path(tmp) / name, config, quiet=True)
            runs[name] = (
                trainer,
                trainer._prepare_inputs(trainer.data_collator([data[i] for i in range(args.batch)])),
            )
        samples = {name: [] for name in runs}
        for step in range(args.steps + 2):  # interleaved, so a busy moment of the machine hits every setting alike
            for name, (trainer, batch) in runs.items():
                start = time.perf_counter()
                loss = trainer.compute_loss(trainer.model, dict(batch))
                loss.backward()
                trainer.model.zero_grad(set_to_none=True)
                if step >= 2:
                    samples[name].append(time.perf_counter() - start)
    times = {name: statistics.median(values) for name, values in samples.items()}
    plain = times["plain DPO"]
    print(f"tiny LLaVA, batch of {args.batch} pairs, full fine-tuning, median of {args.steps} steps")
    for name, seconds in times.items():
        print(f"{name:<12} {seconds * 1e3:8.1f} ms/step   {seconds / plain:5.2f}x")
    ratio = times["DPO + ICA"] / plain
    print(f"ICA / plain = {ratio:.2f}x (target <= 1.1x: {'met' if ratio <= 1.1 else 'missed'})")


if __name__ == "__main__":
    main()
