"""The training settings: one typed model used by `--config train.yaml`, by a recipe's ``train`` section and by
`prefgen train --rounds`. Defaults run on CPU in minutes on tiny models; the papers' settings are in the recipes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from prefgen.core.config import StrictModel
from prefgen.core.errors import PrefgenError


class LoraSettings(StrictModel):
    r: int = Field(16, ge=1, description="LoRA rank (CSR: 128, SeVa: 1024).")
    alpha: int = Field(32, ge=1, description="LoRA alpha (CSR: 256).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="LoRA dropout (CSR: 0.05).")
    targets: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Projection names adapted inside the language model (found per family; never the vision "
        "tower, the projector or lm_head).",
    )


class MdpoSettings(StrictModel):
    conditional: float = Field(
        1.0,
        ge=0.0,
        description="Weight of mDPO's conditional term (chosen on the clean vs the cropped image); 0 turns it off.",
    )
    anchor: float = Field(1.0, ge=0.0, description="Weight of mDPO's anchor term (chosen reward above 0).")
    crop_scale: tuple[float, float] = Field(
        (0.01, 0.2), description="Area kept by the random-resized crop that makes the corrupted image (mDPO: 1-20 %)."
    )


class TrainConfig(StrictModel):
    """How to train one round: DPO (trl) plus optional ICA (SENA) and mDPO terms, LoRA or full fine-tuning."""

    beta: float = Field(0.1, gt=0.0, description="DPO beta (every paper: 0.1).")
    learning_rate: float = Field(1e-5, gt=0.0, description="Peak learning rate (CSR 1e-7, SENA 2e-6 on 7B models).")
    epochs: float = Field(1.0, gt=0.0, description="Passes over the pairs.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    batch_size: int = Field(4, ge=1, description="Pairs per device step.")
    gradient_accumulation: int = Field(1, ge=1, description="Steps per optimizer update (SENA: 8).")
    scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="Learning-rate schedule.")
    warmup_ratio: float = Field(0.03, ge=0.0, le=1.0, description="Share of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    lora: LoraSettings | None = Field(LoraSettings(), description="LoRA settings; null for full fine-tuning.")
    reference: Literal["auto", "adapter", "copy", "precomputed"] = Field(
        "auto",
        description="Reference model: the policy with adapters disabled (LoRA), a frozen copy, or log-probs "
        "computed once before training (SENA; saves the copy's memory). auto = adapter with LoRA, copy without.",
    )
    sft_weight: float = Field(0.0, ge=0.0, description="Weight of an NLL term on every chosen answer (trl `sft`).")
    ica_weight: float = Field(
        0.0,
        ge=0.0,
        description="Weight of SENA's image-content-alignment term: token-mean "
        "NLL of the chosen answer on description rows, averaged over the batch (SENA: 1.0).",
    )
    ica_column: str = Field("question_source", description="Column that marks description rows.")
    ica_values: list[str] = Field(["description", "caption"], description="Values of `ica_column` that mark them.")
    mdpo: MdpoSettings | None = Field(None, description="mDPO's conditional and anchor terms; null turns them off.")
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto uses CUDA when present.")
    bf16: bool = Field(False, description="Train in bfloat16 autocast (GPUs).")
    logging_steps: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _reference_fits(self):
        if self.reference == "adapter" and self.lora is None:
            raise ValueError("reference: adapter needs LoRA (full fine-tuning has no adapter to disable)")
        if self.reference == "precomputed" and self.mdpo is not None and self.mdpo.conditional > 0:
            raise ValueError("mDPO's conditional term needs a live reference (adapter or copy), not precomputed")
        return self

    def reference_kind(self) -> str:
        if self.reference != "auto":
            return self.reference
        return "adapter" if self.lora is not None else "copy"

    def to_dpo_kwargs(self, use_cpu: bool) -> dict[str, Any]:
        """The settings trl's ``DPOConfig`` takes from this config: the one place where a field is renamed or
        converted (every other ``DPOConfig`` argument is the run's own business: output folder, saving, logging
        sinks). ``use_cpu``: whether the run trains on the CPU, which turns bf16 off."""
        losses, weights = ["sigmoid"], [1.0]
        if self.sft_weight > 0:
            losses, weights = ["sigmoid", "sft"], [1.0, self.sft_weight]
        return {
            "beta": self.beta,
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.epochs,
            "max_steps": self.max_steps or -1,  # trl: -1 = train for num_train_epochs
            "per_device_train_batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation,
            "lr_scheduler_type": self.scheduler,
            "warmup_steps": _warmup_as_ratio(self.warmup_ratio),
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "loss_type": losses,
            "loss_weights": weights,
            "bf16": self.bf16 and not use_cpu,
            "use_cpu": use_cpu,
            "logging_steps": self.logging_steps,
            "seed": self.seed,
        }


def _warmup_as_ratio(ratio: float) -> float:
    """transformers reads ``warmup_steps`` below 1 as a share of the steps and from 1 up as a step count, so a ratio
    of 1.0 would mean one step. The largest float below 1 warms up over every step (ceil(n * (1 - 2**-53)) = n for
    any step count a run can have)."""
    return ratio if ratio < 1.0 else math.nextafter(1.0, 0.0)


def load_train_config(path: str | Path | None, overrides: dict | None = None) -> TrainConfig:
    """A ``TrainConfig`` from a YAML file (or defaults), with ``overrides`` applied; one clear error if invalid."""
    data: dict = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PrefgenError(f"cannot read training config {path}: {exc}") from None
        if not isinstance(data, dict):
            raise PrefgenError(f"{path}: a training config is a mapping of settings")
    data = {**data, **(overrides or {})}
    try:
        return TrainConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise PrefgenError(
            f"{path or 'training config'}: {where}: {first['msg']}"
            f"{f' (and {len(exc.errors()) - 1} more)' if len(exc.errors()) > 1 else ''}"
        ) from None
