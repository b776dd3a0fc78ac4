"""Run inside LLaMA-Factory's own venv by scripts/compat.sh: LLaMA-Factory's loader reads prefgen's
``--format llamafactory`` export, every row is compared with what the store holds, then ``llamafactory-cli train``
runs a few DPO steps (LoRA, template qwen2_vl) on a tiny Qwen2-VL.

    python llamafactory_check.py EXPORT JSONL_EXPORT MODEL WORK   # writes WORK/result.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stored import CheckFailed, expect, losses, main, sha256, stored_rows


def train_args(export: Path, model: Path, work: Path) -> dict:
    (name,) = json.loads((export / "dataset_info.json").read_text(encoding="utf-8"))
    return {
        "model_name_or_path": str(model),
        "trust_remote_code": False,
        "stage": "dpo",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_target": "all",
        "lora_rank": 4,
        "pref_beta": 0.1,
        "pref_loss": "sigmoid",
        "dataset": name,
        "dataset_dir": str(export),
        "template": "qwen2_vl",
        "cutoff_len": 1024,
        "overwrite_cache": True,
        "output_dir": str(work / "out"),
        "logging_steps": 1,
        "save_strategy": "no",
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_steps": 3,
        "learning_rate": 1.0e-3,
        "report_to": "none",
        "use_cpu": True,
        "seed": 0,
    }


def check(export: Path, jsonl: Path, model: Path, work: Path) -> dict:
    import llamafactory
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.data.loader import _get_merged_dataset
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    args = train_args(export, model, work)
    model_args, data_args, training_args, _, _ = get_train_args(dict(args))
    stored = stored_rows(jsonl)

    # 1. LLaMA-Factory's own reading of the files (the converter to its aligned format): texts and images
    aligned = _get_merged_dataset(data_args.dataset, model_args, data_args, training_args, stage="rm")
    if len(aligned) != len(stored):
        raise CheckFailed(f"LLaMA-Factory read {len(aligned)} rows, the version holds {len(stored)}")
    for row, got in zip(stored, aligned):
        question = "<image>" * len(row["images"]) + row["question"]
        expect(row, "the prompt", got["_prompt"], [{"role": "user", "content": question}])
        expect(row, "the chosen answer", got["_response"][0]["content"], row["chosen"])
        expect(row, "the rejected answer", got["_response"][1]["content"], row["rejected"])
        expect(row, "the images", [sha256(p) for p in got["_images"] or []], row["images"])

    # 2. its preprocessing for DPO (what the trainer is fed): examples kept, each with its images
    tokenizer_module = load_tokenizer(model_args)
    tokenizer = tokenizer_module["tokenizer"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    module = get_dataset(template, model_args, data_args, training_args, stage="rm", **tokenizer_module)
    train = module["train_dataset"]
    images = 0
    for row, example in zip(stored, train):
        with_images = [sha256(p) for p in example["images"] or []] == row["images"]
        chosen = tokenizer.decode([t for t in example["chosen_labels"] if t != -100], skip_special_tokens=True)
        rejected = tokenizer.decode([t for t in example["rejected_labels"] if t != -100], skip_special_tokens=True)
        expect(row, "the chosen answer as tokenized", chosen.strip(), row["chosen"])
        expect(row, "the rejected answer as tokenized", rejected.strip(), row["rejected"])
        images += with_images and bool(row["images"])

    # 3. the trainer as users run it
    config = work / "dpo.yaml"  # JSON scalars are YAML (its JSON config reader is broken in 0.9.5)
    config.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in args.items()), encoding="utf-8")
    cli = Path(sys.executable).with_name("llamafactory-cli")
    done = subprocess.run([str(cli), "train", str(config)], env={**os.environ, "FORCE_TORCHRUN": "0"})
    if done.returncode:
        raise CheckFailed(f"llamafactory-cli train exited {done.returncode} (its output is above)")
    found = losses(work / "out" / "trainer_state.json")
    return {
        "version": llamafactory.__version__,
        "rows": len(stored),
        "examples": len(train),
        "images": images,
        "loss_first": found[0],
        "loss_last": found[-1],
    }


if __name__ == "__main__":
    main(check)
