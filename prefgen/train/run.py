"""One training run: a store version (local or on the Hub) + a model -> a plain model folder with its lineage.

The output folder holds the trained model (LoRA merged in, so the next round loads it like any model), its processor,
``metrics.jsonl`` (trl's log per step: loss parts, reward margins and accuracies) and ``lineage.json`` (parent model,
data version, recipe fingerprint, settings, final metrics, and later the evaluation). It is written beside its final
place and renamed in when complete, so a crash never leaves a half-written model where a model is expected.

Under `accelerate launch` (several processes, data-parallel) every process trains and the main one alone writes.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefgen import __version__
from prefgen.core.errors import PrefgenError
from prefgen.core.fs import replace_folder
from prefgen.core.refs import DataRef
from prefgen.engine.logs import capture
from prefgen.recipe.training import TrainConfig
from prefgen.store.folder import Store
from prefgen.train.lineage import LINEAGE, METRICS

DISTRIBUTED_TIMEOUT_HOURS = 12  # how long processes wait for the main one (a round's build runs there alone)


def load_pairs(data: DataRef):
    """The rows of ``data`` as a ``datasets.Dataset`` (trl's format as stored) and a description for the lineage."""
    import datasets

    if data.hub:
        rows = datasets.load_dataset(data.location, revision=data.version, split="train")
        return rows, {"hub": data.location, "revision": data.version, "rows": len(rows)}

    store = Store(data.location)
    manifest = store.manifest(data.version)
    store.check_readable(manifest.version)  # a damaged file is one line naming it, not a datasets traceback
    rows = datasets.load_dataset(str(store.root), name=manifest.version, split="train")
    vlm = manifest.models.get("vlm")
    return rows, {
        "store": str(store.root.resolve()),
        "version": manifest.version,
        "rows": manifest.rows,
        "recipe_fingerprint": manifest.recipe_fingerprint,
        "round": manifest.round,
        "model": (vlm.path or vlm.id) if vlm else None,
    }


def train(
    data: str | DataRef,
    model: str | Path,
    out: str | Path,
    config: TrainConfig,
    extra_lineage: dict[str, Any] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train ``model`` on ``data`` with ``config`` into ``out``; returns the lineage written there."""
    data = DataRef.parse(data) if isinstance(data, str) else data
    out = Path(out)
    if (out / LINEAGE).exists():
        raise PrefgenError(f"{out} already holds a trained model; choose another --out or remove it")
    check_model(model, config.device)  # before the data: a typo in --model is found in a second
    rows, data_info = _load_rows(data, quiet)
    partial = _fresh_partial(out)
    with capture(partial / _log_name()) as logs:  # transformers' and trl's output: out/train.log, not the console
        trainer, processor = _make_trainer(rows, str(model), partial, config, quiet, logs.console)
        result = trainer.train()
        if is_main_process():  # saving prints too (transformers' "Writing model shards" bar): into the log
            _save_model(trainer, processor, partial, merge_lora=config.lora is not None)
    if not is_main_process():  # with several processes the main one alone writes the model and lineage
        _wait_for(out / LINEAGE)
        return json.loads((out / LINEAGE).read_text())
    lineage = _lineage(model, data_info, config, result, trainer.state.log_history, extra_lineage)
    (partial / LINEAGE).write_text(json.dumps(lineage, indent=2))
    _move_into_place(partial, out)
    return lineage


def check_model(model: str | Path, device: str = "auto") -> None:
    """Stop on a model that cannot be had here, in the words ``build`` uses for the same mistake: a local folder
    (anything that is not a plain ``namespace/name`` Hub id) must exist; a Hub id must be cached when offline."""
    import re

    from prefgen.models.availability import device_problems, vlm_problems
    from prefgen.models.config import VLMConfig

    text = str(model)
    hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", text) is not None and not Path(text).exists()
    found = vlm_problems(VLMConfig(id=text) if hub_id else VLMConfig(path=text), None) + device_problems(device)
    if found:
        raise PrefgenError(found[0][1])


def _load_rows(data: DataRef, quiet: bool):
    if quiet:
        import datasets

        datasets.disable_progress_bars()
    with distributed_state().main_process_first():  # the main process prepares the datasets cache first
        rows, data_info = load_pairs(data)
    if len(rows) == 0:
        raise PrefgenError(f"{data.location}@{data.version or 'latest'} has no pairs to train on")
    return rows, data_info


def _fresh_partial(out: Path) -> Path:
    """The folder the run writes into before it is renamed to ``out``; emptied by the main process."""
    partial = out.with_name(out.name + ".partial")
    if is_main_process():
        shutil.rmtree(partial, ignore_errors=True)
    distributed_state().wait_for_everyone()
    return partial


def _save_model(trainer, processor, partial: Path, merge_lora: bool) -> None:
    policy = trainer.model.merge_and_unload() if merge_lora else trainer.model
    policy.save_pretrained(partial)
    processor.save_pretrained(partial)
    with open(partial / METRICS, "w") as f:
        for entry in trainer.state.log_history:
            f.write(json.dumps(entry) + "\n")


def _lineage(model, data_info: dict, config: TrainConfig, result, history: list, extra: dict | None) -> dict[str, Any]:
    means = _means(
        history, ("rewards/accuracies", "rewards/margins", "loss/ica", "loss/mdpo_anchor", "loss/mdpo_conditional")
    )
    return {
        "parent_model": str(model),
        "data": data_info,
        "config": config.model_dump(mode="json"),
        "metrics": {"train_loss": result.training_loss, "steps": result.global_step, **means},
        "created_at": datetime.now(timezone.utc).isoformat(),
        "prefgen_version": __version__,
        "eval": {},
        **(extra or {}),
    }


def _move_into_place(partial: Path, out: Path) -> None:
    for leftover in partial.glob("checkpoint-*"):
        shutil.rmtree(leftover)
    replace_folder(partial, out)


def is_main_process() -> bool:
    """Whether this is the main (or only) process of a `torchrun` / `accelerate launch` run, from the launcher's
    environment (which outlives the process group)."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


def _wait_for(path: Path, seconds: float = DISTRIBUTED_TIMEOUT_HOURS * 3600) -> None:
    """Wait until the main process has written ``path`` (it renames a finished model folder in at once)."""
    import time

    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise PrefgenError(f"the main process did not write {path} in time")
        time.sleep(1.0)


def distributed_state():
    """accelerate's view of the processes: one (a plain run) or those of `accelerate launch`. The first call sets up
    the process group, with a timeout long enough for the other processes to wait out a round's build."""
    from datetime import timedelta

    import torch
    from accelerate import PartialState

    # without cpu=True on a machine without CUDA, accelerate would not join the launcher's (gloo) process group
    return PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(hours=DISTRIBUTED_TIMEOUT_HOURS))


def _log_name() -> str:
    """The run's log in its model folder: ``train.log`` (the other processes of a run: ``train-rank<N>.log``)."""
    import os

    return "train.log" if is_main_process() else f"train-rank{os.environ.get('RANK')}.log"


def _make_trainer(rows, model_path: str, out: Path, config: TrainConfig, quiet: bool, console=None):
    import random

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import DPOConfig
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    from prefgen.train.trainer import PairCollator, PrefgenDPOTrainer

    try:
        processor = AutoProcessor.from_pretrained(model_path)
        model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)
    except OSError as exc:
        raise PrefgenError(f"cannot load the model {model_path}: {str(exc).splitlines()[0]}") from None
    use_cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
    args = DPOConfig(
        output_dir=str(out),
        max_length=None,
        activation_checkpointing=False,
        report_to="none",
        save_strategy="no",
        dataloader_num_workers=0,
        disable_tqdm=quiet,
        **config.to_dpo_kwargs(use_cpu=use_cpu),
    )
    peft_config = None
    if config.lora is not None:
        from peft import LoraConfig

        from prefgen.train.lora import lora_targets

        peft_config = LoraConfig(
            r=config.lora.r,
            lora_alpha=config.lora.alpha,
            lora_dropout=config.lora.dropout,
            target_modules=lora_targets(model, config.lora.targets),
        )
    ref_model = None
    if config.lora is not None and config.reference_kind() == "copy":  # trl would otherwise disable the adapter
        ref_model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)
    collator = PairCollator(
        DataCollatorForVisionPreference(processor, max_length=None), config, random.Random(config.seed)
    )
    trainer = PrefgenDPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=rows,
        processing_class=processor,
        data_collator=collator,
        peft_config=peft_config,
        config=config,
    )
    if quiet:  # without progress bars transformers prints every log line instead; metrics.jsonl still has them
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    else:  # the bar, and each log as a line of numbers, on the console
        from transformers.trainer_callback import ProgressCallback

        from prefgen.train.trainer import LogLines

        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(LogLines(file=console))
    return trainer, processor


def _means(history: list[dict], keys: tuple[str, ...]) -> dict[str, float]:
    """The mean of each key over the logged steps (like trl's ``train_loss``: one batch's accuracy is noise)."""
    found = {}
    for key in keys:
        values = [entry[key] for entry in history if key in entry]
        if values:
            found[key] = sum(values) / len(values)
    return found
