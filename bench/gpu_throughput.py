"""GPU throughput of the VLM runtime on real-size models (random weights, bf16, nothing downloaded).

Run: .venv/bin/python bench/gpu_throughput.py [--family qwen2_5_vl,llava] [--batch 8] [--new-tokens 128]
Needs a CUDA GPU (about 40 GiB for the two 7B models, one at a time); without one it says so and exits with 2.

For each family the published architecture (Qwen2.5-VL-7B-Instruct, LLaVA-1.5-7B; the shapes are written below,
nothing is fetched) is built with random bf16 weights, with the tiny family's offline tokenizer and processor set to
the real image resolution, so prompts carry the real number of image tokens. It measures:
- batched ``generate``: generated tokens/s for ``--batch`` prompts at once vs the same prompts one at a time;
- CSR-style sentence steps per image: ``encode`` once, then 4 steps x 5 candidates sharing the prefix, vs a per-node
  baseline that runs every candidate of every step as its own call (image + prompt + partial answer re-encoded);
- peak GPU memory of each part;
- with ``--engines hf,vllm`` (the default), the same model saved and served by the vLLM engine: batched and
  one-by-one tokens/s on the same prompts, the same sentence steps, and the GPU memory in use while it runs (vLLM
  reserves ``memory_share`` of the GPU up front, so that is what it holds, not what it needs).
It prints the ratios (speed-up of batching, time of prefix reuse / per-node, vLLM / transformers). The whole run is
capped near 8 minutes (vLLM's part is skipped when the budget is nearly spent).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import timed  # noqa: E402

DEADLINE_S = 8 * 60
STEPS, CANDIDATES = 4, 5
ANSWER = [
    "The image shows a red square on a white background.",
    " There is a blue circle next to it.",
    " A small green triangle is in the corner.",
    " The sky is clear.",
]

# Published shapes (config.json of the public checkpoints), written out so nothing is downloaded.
QWEN2_5_VL_7B = dict(
    text=dict(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        head_dim=128,
        max_position_embeddings=128000,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0},
    ),
    vision=dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        out_hidden_size=3584,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
    ),
    pixels=448 * 448,  # 16 x 16 merged patches -> 256 image tokens
)
LLAVA_1_5_7B = dict(
    text=dict(
        vocab_size=32064,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        head_dim=128,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
    ),
    vision=dict(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=336,
        patch_size=14,
        projection_dim=768,
    ),
    image_size=336,  # 24 x 24 patches -> 576 image tokens
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="qwen2_5_vl,llava")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--engines", default="hf,vllm", help="hf, or hf,vllm (vLLM must be installed).")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_throughput: no CUDA device found; this benchmark builds 7B models and needs a GPU (nothing was run)",
            file=sys.stderr,
        )
        return 2
    start = time.monotonic()
    results = []
    for family in args.family.split(","):
        if time.monotonic() - start > DEADLINE_S * 0.6:
            print(f"{family}: skipped, the {DEADLINE_S // 60}-minute budget is nearly spent")
            continue
        results.append(measure(family, args, start))
        torch.cuda.empty_cache()
    print()
    print(
        f"{'family':<12} {'batch tok/s':>12} {'single tok/s':>13} {'batch x':>8} {'steps s':>8} "
        f"{'per-node s':>10} {'reuse/node':>10} {'peak GiB':>9}"
    )
    for r in results:
        print(
            f"{r['family']:<12} {r['batch_tps']:>12.1f} {r['single_tps']:>13.1f} {r['batch_speedup']:>7.2f}x "
            f"{r['steps_s']:>8.2f} {r['node_s']:>10.2f} {r['reuse_ratio']:>9.2f}x {r['peak_gib']:>9.1f}"
        )
        if "vllm" in r:
            v = r["vllm"]
            print(
                f"{r['family'] + ' vllm':<12} {v['batch_tps']:>12.1f} {v['single_tps']:>13.1f} "
                f"{v['batch_tps'] / v['single_tps']:>7.2f}x {v['steps_s']:>8.2f} {'':>21} {v['used_gib']:>9.1f}"
            )
            print(
                f"{r['family']}: hf {r['batch_tps']:.1f} tok/s, vllm {v['batch_tps']:.1f} tok/s, "
                f"ratio {v['batch_tps'] / r['batch_tps']:.2f}×; sentence steps hf {r['steps_s']:.2f} s, "
                f"vllm {v['steps_s']:.2f} s, ratio {r['steps_s'] / v['steps_s']:.2f}×"
            )
    print(f"total {time.monotonic() - start:.0f} s")
    return 0


def build(family: str, device: str):
    """A real-size model with random bf16 weights and a processor at the real resolution (offline tokenizer)."""
    import torch

    from prefgen.models import VLM
    from prefgen.models.tiny.configs import BUILDERS
    from prefgen.models.tiny.families import _model_class
    from prefgen.models.tiny.text import build_tokenizer

    tokenizer = build_tokenizer(family)
    processor, config = BUILDERS[family](tokenizer)
    if family == "qwen2_5_vl":
        shape = QWEN2_5_VL_7B
        for key, value in shape["text"].items():
            setattr(config.text_config, key, value)
        for key, value in shape["vision"].items():
            setattr(config.vision_config, key, value)
        size = {"shortest_edge": shape["pixels"], "longest_edge": shape["pixels"]}
        processor.image_processor.size = size
    elif family == "llava":
        shape = LLAVA_1_5_7B
        for key, value in shape["text"].items():
            setattr(config.text_config, key, value)
        for key, value in shape["vision"].items():
            setattr(config.vision_config, key, value)
        edge = shape["image_size"]
        processor.image_processor.size = {"shortest_edge": edge}
        processor.image_processor.crop_size = {"height": edge, "width": edge}
        processor.patch_size = 14
        config.image_seq_length = (edge // 14) ** 2
    else:
        raise SystemExit(f"gpu_throughput: no published shape written for {family!r}; use qwen2_5_vl or llava")
    if getattr(config.text_config, "layer_types", None) is not None:  # derived from the tiny layer count
        config.text_config.layer_types = ["full_attention"] * config.text_config.num_hidden_layers
    with torch.device(device):
        model = _model_class(family)._from_config(config, dtype=torch.bfloat16)
    return VLM(model.eval(), processor, name=f"{family}-7b-random", batch_size=64)


def measure(family: str, args, start: float) -> dict:
    import torch
    from PIL import Image

    from prefgen.models import Prompt

    vlm = build(family, "cuda")
    images = [Image.new("RGB", (640, 480), (40 * i % 255, 90, 200)) for i in range(args.batch)]
    prompts = [Prompt("Describe the image in detail.", image) for image in images]
    new = args.new_tokens

    def tokens(found):
        return sum(len(c.token_ids) for cands in found for c in cands)

    def batched():
        return vlm.generate(prompts, max_new_tokens=new)

    def single():
        return [vlm.generate([p], max_new_tokens=new)[0] for p in prompts]

    batched()  # warm-up
    torch.cuda.reset_peak_memory_stats()
    t_batch = timed(batched, args.runs)
    t_single = timed(single, 1)
    n_batch, n_single = tokens(batched()), tokens(single())
    partials = ["".join(ANSWER[:step]) for step in range(STEPS)]

    def reuse():
        encoded = vlm.encode(prompts[:1])
        return [
            vlm.sentence_steps(encoded, [partial], k=CANDIDATES, seed=step, max_new_tokens=24)[0]
            for step, partial in enumerate(partials)
        ]

    def per_node():
        return [
            [
                vlm.sentence_steps(prompts[:1], [partial], k=1, seed=step * CANDIDATES + j, max_new_tokens=24)[0][0]
                for j in range(CANDIDATES)
            ]
            for step, partial in enumerate(partials)
        ]

    t_steps = timed(reuse, args.runs)
    t_node = timed(per_node, 1) if time.monotonic() - start < DEADLINE_S * 0.8 else float("nan")
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(
        f"{family}: {sum(p.numel() for p in vlm.model.parameters()) / 1e9:.2f}B params, prompt "
        f"{vlm.encode(prompts[:1]).length} tokens; batch {args.batch}: {t_batch:.2f} s, one by one {t_single:.2f} s; "
        f"sentence steps {t_steps:.2f} s vs per-node {t_node:.2f} s; peak {peak:.1f} GiB"
    )
    result = dict(
        family=family,
        batch_tps=n_batch / t_batch,
        single_tps=n_single / t_single,
        batch_speedup=(n_batch / t_batch) / (n_single / t_single),
        steps_s=t_steps,
        node_s=t_node,
        reuse_ratio=t_steps / t_node,
        peak_gib=peak,
    )
    if "vllm" in args.engines.split(",") and time.monotonic() - start < DEADLINE_S * 0.6:
        result["vllm"] = measure_vllm(vlm, prompts, partials, args)
    return result


def measure_vllm(vlm, prompts, partials, args) -> dict:
    """The same model, saved and served by the vLLM engine; the transformers copy is freed first."""
    import gc
    import tempfile

    import torch

    from prefgen.models import VllmVLM

    with tempfile.TemporaryDirectory() as folder:
        vlm.model.save_pretrained(folder)
        vlm.processor.save_pretrained(folder)
        vlm.model.to("meta")
        gc.collect()
        torch.cuda.empty_cache()
        engine = VllmVLM.load(path=folder, dtype="bfloat16", device="cuda")
        new = args.new_tokens
        engine.generate(prompts, max_new_tokens=new)  # warm-up
        t_batch = timed(lambda: engine.generate(prompts, max_new_tokens=new), args.runs)
        n_batch = sum(len(c.token_ids) for cands in engine.generate(prompts, max_new_tokens=new) for c in cands)
        t_single = timed(lambda: [engine.generate([p], max_new_tokens=new) for p in prompts], 1)

        def steps():
            encoded = engine.encode(prompts[:1])
            return [
                engine.sentence_steps(encoded, [partial], k=CANDIDATES, seed=step, max_new_tokens=24)[0]
                for step, partial in enumerate(partials)
            ]

        t_steps = timed(steps, args.runs)
        free, total = torch.cuda.mem_get_info()
        engine.close()
    return dict(
        batch_tps=n_batch / t_batch, single_tps=n_batch / t_single, steps_s=t_steps, used_gib=(total - free) / 2**30
    )


if __name__ == "__main__":
    sys.exit(main())
