"""Run inside ms-swift's own venv by scripts/compat.sh: ms-swift's dataset loader reads prefgen's ``--format swift``
export, every row is compared with what the store holds, its qwen2_vl template encodes each pair in RLHF mode
(image included), then ``swift rlhf --rlhf_type dpo`` runs a few LoRA steps on a tiny Qwen2-VL.

    python swift_check.py EXPORT JSONL_EXPORT MODEL WORK   # writes WORK/result.json

ms-swift opens a relative image path from the current folder (or ``ROOT_IMAGE_DIR``): the check runs, as a user
would, from the export folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from stored import CheckFailed, expect, losses, main, stored_rows


def cli_args(export: Path, model: Path, work: Path) -> list[str]:
    options = {
        "rlhf_type": "dpo",
        "model": model,
        "model_type": "qwen2_vl",
        "template": "qwen2_vl",
        "dataset": export / "data.jsonl",
        "split_dataset_ratio": 0,
        "dataset_shuffle": "false",
        "tuner_type": "lora",
        "lora_rank": 4,
        "target_modules": "all-linear",
        "beta": 0.1,
        "torch_dtype": "float32",
        "max_steps": 3,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1.0e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "dataloader_num_workers": 0,
        "dataset_num_proc": 1,
        "output_dir": work / "out",
        "add_version": "false",
        "seed": 0,
    }
    return [part for key, value in options.items() for part in (f"--{key}", str(value))]


def check(export: Path, jsonl: Path, model: Path, work: Path) -> dict:
    import swift
    from swift.arguments import RLHFArguments
    from swift.template.vision_utils import load_file
    from swift.utils import parse_args

    os.chdir(export)
    os.environ["USE_HF"] = "1"  # resolve hub names on the (offline) Hugging Face side, not ModelScope's network
    argv = cli_args(export, model, work)
    args, rest = parse_args(RLHFArguments, argv)  # the very parser `swift rlhf` runs
    if rest:
        raise CheckFailed(f"ms-swift does not know the options {rest}")
    stored = stored_rows(jsonl)

    # 1. ms-swift's own dataset loading (its AutoPreprocessor): texts and images
    train, _ = args.load_dataset()
    if len(train) != len(stored):
        raise CheckFailed(f"ms-swift read {len(train)} rows, the version holds {len(stored)}")
    for row, got in zip(stored, train):
        question = "<image>" * len(row["images"]) + row["question"]
        messages = [{k: m[k] for k in ("role", "content")} for m in got["messages"]]
        chosen = [{"role": "user", "content": question}, {"role": "assistant", "content": row["chosen"]}]
        expect(row, "the messages", messages, chosen)
        expect(row, "the rejected answer", got["rejected_response"], row["rejected"])
        found = [hashlib.sha256(load_file(image["path"]).getvalue()).hexdigest() for image in got["images"] or []]
        expect(row, "the images", found, row["images"])

    # 2. its template in RLHF mode (what the trainer is fed): every pair encoded, each with its images
    processor = args.get_model_processor(load_model=False)[1]
    template = args.get_template(processor)
    template.set_mode("rlhf")
    tokenizer = template.tokenizer
    examples = images = 0
    for row, got in zip(stored, train):
        encoded = template.encode(dict(got))
        examples += 1
        grids = [encoded.get(f"{side}_image_grid_thw") for side in ("chosen", "rejected")]
        images += bool(row["images"]) and all(g is not None and len(g) == len(row["images"]) for g in grids)
        for side in ("chosen", "rejected"):
            labels = [t for t in encoded[f"{side}_labels"] if t != -100]
            text = tokenizer.decode(labels, skip_special_tokens=True).strip()
            expect(row, f"the {side} answer as tokenized", text, row[side])

    # 3. the trainer as users run it
    done = subprocess.run([str(Path(sys.executable).with_name("swift")), "rlhf", *argv])
    if done.returncode:
        raise CheckFailed(f"swift rlhf exited {done.returncode} (its output is above)")
    found = losses(work / "out" / "logging.jsonl")
    return {
        "version": swift.__version__,
        "rows": len(stored),
        "examples": examples,
        "images": images,
        "loss_first": found[0],
        "loss_last": found[-1],
    }


if __name__ == "__main__":
    main(check)
