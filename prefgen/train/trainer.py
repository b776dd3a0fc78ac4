"""trl's DPOTrainer with what the papers add: SENA's image-content-alignment (ICA) term, mDPO's conditional and anchor
terms, and precomputed reference log-probs for vision data (trl refuses ``precompute_ref_log_probs`` there).

trl 1.16 computes the DPO loss in one private method whose policy forward returns per-token log-probs through a
fused LM head. Rather than copy that method, a forward hook keeps the log-probs each forward returns during
``compute_loss``: the first is the policy's (trl runs it first), the next the reference's. ICA and the anchor term are
computed from them, so ICA costs no extra forward pass. Only mDPO's conditional term needs one (the chosen answer on
the corrupted image, for the policy and the reference).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.trainer_callback import ProgressCallback
from trl import DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

from prefgen.recipe.training import TrainConfig
from prefgen.stages.corrupt.pixels import apply_corruption
from prefgen.train import losses

EXTRA_KEYS = ("ica_flags", "corrupted")


@dataclass
class PairCollator:
    """trl's vision preference collator, plus ICA flags per row and, for mDPO, a batch of the chosen answers on
    randomly cropped images (mDPO's corruption: a random-resized crop keeping 1-20 % of the area)."""

    base: DataCollatorForVisionPreference
    config: TrainConfig
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        config = self.config
        flags = torch.tensor(
            [str(ex.get(config.ica_column)) in config.ica_values for ex in examples], dtype=torch.float32
        )
        refs = None
        if "ref_chosen_logps" in examples[0]:
            refs = [torch.tensor([ex[k] for ex in examples]) for k in ("ref_chosen_logps", "ref_rejected_logps")]
        corrupted = None
        if config.mdpo is not None and config.mdpo.conditional > 0:
            cropped = [
                {**ex, "images": [self._crop(im) for im in ex["images"]], "rejected": ex["chosen"]} for ex in examples
            ]
            corrupted = self.base([_plain(ex) for ex in cropped])
        batch = self.base([_plain(ex) for ex in examples])  # trl's collator rewrites the dicts it is given
        batch["ica_flags"] = flags
        if refs is not None:
            batch["ref_chosen_logps"], batch["ref_rejected_logps"] = refs
        if corrupted is not None:
            batch["corrupted"] = corrupted
        return batch

    def _crop(self, image):
        """mDPO's corruption through the `corrupt` stage's own op (albumentations' random-resized crop), so the
        trainer and a recipe's `corrupt: random_resized_crop` make the same kind of image."""
        op = {"op": "random_resized_crop", "scale": list(self.config.mdpo.crop_scale)}
        return apply_corruption(image, {"ops": [op], "seed": self.rng.randrange(2**31)})


def _plain(example: dict) -> dict:
    return {k: example[k] for k in ("prompt", "chosen", "rejected", "images") if k in example}


class PrefgenDPOTrainer(DPOTrainer):
    """DPOTrainer + ICA + mDPO + precomputed references. Build it with ``make_trainer``."""

    def __init__(self, *args, config: TrainConfig, **kwargs):
        self.config = config
        with _no_reference_copy() if config.reference_kind() == "precomputed" else contextlib.nullcontext():
            super().__init__(*args, **kwargs)
        self._captured: list[torch.Tensor] | None = None
        self._hooks = [
            m.register_forward_hook(self._capture, with_kwargs=True)
            for m in (self.model, self.ref_model)
            if m is not None
        ]
        if config.reference_kind() == "precomputed":
            self.train_dataset = self._with_reference_logps(self.train_dataset)
            self.precompute_ref_logps = True

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        extra = [self.config.ica_column, "ref_chosen_logps", "ref_rejected_logps"]
        self._signature_columns = [*self._signature_columns, *[c for c in extra if c not in self._signature_columns]]

    def _capture(self, module, args, kwargs, output):
        if self._captured is not None and kwargs.get("fused_lm_head"):
            self._captured.append(output.log_probs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        extra = {k: inputs.pop(k) for k in EXTRA_KEYS if k in inputs}
        self._captured = []
        try:
            out = super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
            captured = self._captured
        finally:
            self._captured = None
        loss = out[0] if return_outputs else out
        loss = loss + self._extra_terms(model, inputs, extra, captured)
        return (loss, out[1]) if return_outputs else loss

    def _extra_terms(self, model, inputs, extra, captured) -> torch.Tensor:
        config, mode = self.config, "train" if self.model.training else "eval"
        mask = inputs["completion_mask"][..., 1:]
        chosen_mask = mask.chunk(2, dim=0)[0]
        chosen_tokens = captured[0][:, -mask.size(1) :].chunk(2, dim=0)[0]
        total = torch.zeros((), device=chosen_tokens.device)
        if config.ica_weight > 0:
            ica = losses.image_content_alignment(chosen_tokens, chosen_mask, extra["ica_flags"].to(total.device))
            self._metrics[mode]["loss/ica"].append(ica.item())
            total = total + config.ica_weight * ica
        if config.mdpo is not None:
            logp_chosen = (chosen_tokens * chosen_mask).sum(dim=1)
            ref_chosen = self._ref_chosen(inputs, captured, mask, chosen_mask)
            anchor = losses.mdpo_anchor(logp_chosen, ref_chosen, self.beta)
            self._metrics[mode]["loss/mdpo_anchor"].append(anchor.item())
            total = total + config.mdpo.anchor * anchor
            if config.mdpo.conditional > 0:
                logp_bad, ref_bad = self._chosen_on_corrupted(model, extra["corrupted"])
                conditional = losses.mdpo_conditional(logp_chosen, ref_chosen, logp_bad, ref_bad, self.beta)
                self._metrics[mode]["loss/mdpo_conditional"].append(conditional.item())
                total = total + config.mdpo.conditional * conditional
        return total

    def _ref_chosen(self, inputs, captured, mask, chosen_mask) -> torch.Tensor:
        if "ref_chosen_logps" in inputs:
            return inputs["ref_chosen_logps"]
        ref_tokens = captured[1][:, -mask.size(1) :].chunk(2, dim=0)[0]
        return (ref_tokens * chosen_mask).sum(dim=1)

    def _chosen_on_corrupted(self, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probs of the chosen answers on the corrupted images: policy (with grad) and reference."""
        batch = self._prepare_inputs(batch)
        mask = batch["completion_mask"][..., 1:]
        kwargs = {k: v for k, v in batch.items() if k != "completion_mask"}
        labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
        policy = model(**kwargs, use_cache=False, labels=labels, fused_lm_head=True).log_probs[:, -mask.size(1) :]
        reference = self.ref_model if self.ref_model is not None else model  # adapter disabled inside, with LoRA
        ref = self.compute_ref_log_probs(reference, batch)[0]
        half = mask.chunk(2, dim=0)[0]
        return (policy.chunk(2, dim=0)[0] * half).sum(dim=1), ref

    def _with_reference_logps(self, dataset):
        """Add ``ref_chosen_logps`` / ``ref_rejected_logps`` columns computed once by the initial model (SENA)."""
        chosen, rejected = [], []
        was_training = self.model.training
        self.model.eval()
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=self.args.per_device_train_batch_size, collate_fn=self.data_collator
        )
        for batch in loader:
            batch = self._prepare_inputs({k: v for k, v in batch.items() if k not in EXTRA_KEYS})
            ref_c, ref_r = self.compute_ref_log_probs(self.model, batch)
            chosen += ref_c.float().cpu().tolist()
            rejected += ref_r.float().cpu().tolist()
        self.model.train(was_training)
        return dataset.add_column("ref_chosen_logps", chosen).add_column("ref_rejected_logps", rejected)


@contextlib.contextmanager
def _no_reference_copy():
    """While trl sets up a full fine-tune with precomputed references, do not load a second copy of the model: the
    reference log-probs are computed with the policy itself before its first update."""
    import trl.trainer.dpo_trainer as dpo_module

    original = dpo_module.create_model_from_path
    dpo_module.create_model_from_path = lambda *args, **kwargs: None
    try:
        yield
    finally:
        dpo_module.create_model_from_path = original


class LogLines(ProgressCallback):
    """transformers' training bar, with each log of trl's printed as a line of numbers (``step 2/8: loss 0.6931,
    rewards/accuracies 0.5``) instead of a dict of strings (``{'loss': '0.6931'}``); the bar and the lines go to
    ``file`` (default stderr), the console while a capture sends other output to the log file."""

    def __init__(self, file=None):
        super().__init__()
        self.file = file

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero:
            self.training_bar = tqdm(total=state.max_steps, dynamic_ncols=True, file=self.file)
        self.current_step = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(log_line(state.global_step, state.max_steps, logs), file=self.file)


def log_line(step: int, steps: int, logs: dict[str, Any]) -> str:
    """One log entry as people read it: numbers to four significant digits, as numbers; ``total_flos`` left out."""
    shown = [
        f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in logs.items()
        if key != "total_flos"
    ]
    return f"step {step}/{steps}: " + ", ".join(shown)
