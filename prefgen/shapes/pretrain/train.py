"""The training loops of the shapes-world CLIP and VLM, over a pool of scenes rendered once (``data.ScenePool``); the
whole run, with its plan, saving and report, is ``run.pretrain``.

1. CLIP: symmetric InfoNCE with multi-positive targets (a phrase is true of every image holding its object, so
   those are not negatives), plus two NegCLIP-style hard-negative phrases per image (an absent kind of a present
   colour, an absent kind of a present shape), plus a sigmoid loss of every image against all 24 single-object
   phrases. The hard terms exist because an in-batch-only CLIP learns colour and not shape (shapes.md: AUC 0.69
   against same-colour negatives), and CSR's reward is only as good as that.
2. VLM: LLaVA built with its vision tower copied from the trained CLIP ViT (much faster than learning vision from
   scratch) and read at its last block, then SFT on answer tokens over the task mixture of ``data.TASKS``, where
   some scenes show their image without the prior companion the text names (``data.hide_companions``): a constant
   rate after warm-up, then a cool-down (a fresh optimizer whose rate falls linearly to 0, on the same mixture).

A loop runs until its ``Budget`` is spent: wall-clock seconds (the schedule follows elapsed time, so results vary a
little run to run) or exact step counts (deterministic for a seed).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from prefgen.shapes.pretrain import data, models
from prefgen.shapes.world import KINDS


@dataclass
class TrainConfig:
    clip_batch: int = 128
    clip_lr: float = 3e-3  # 1e-3 learnt colour but barely shape in 10 minutes (per-patch shape accuracy .54 vs .76)
    phrase_weight: float = 0.5  # weight of the all-phrases sigmoid loss; 0 = contrastive + hard negatives only
    patch_weight: float = 5.0  # weight of the per-patch kind classification on the last patch tokens; 0 = off
    hard_negatives: bool = True
    vlm_batch: int = 32
    vlm_lr: float = 1e-3
    freeze_vision: bool = True  # SFT leaves the CLIP-trained tower as it is (LLaVA's recipe): it keeps its shape
    # features, and steps are cheaper without a backward pass through it
    weight_decay: float = 0.01
    warmup: float = 0.03  # CLIP: share of the budget with a linear warm-up, then cosine to 10% of the rate
    vlm_warmup_steps: int = 30  # VLM: linear warm-up over these steps, then a constant rate
    hidden_companion: float = 0.35  # VLM: share of companion-holding scenes shown without the companion while the
    # text still names it (``data.hide_companions``); 0 = the VLM sees what its captions say
    noisy: float = 0.15  # VLM: share of SFT images diffusion-noised (normalised space, as SENA) with the clean text,
    # so that a corrupted image gets fluent, if less accurate, answers rather than babble
    noise_t: tuple[int, int] = (200, 800)  # range of the noise step drawn for those images
    vlm_width: int = 128  # the language model's hidden size (intermediate = 2x) ...
    vlm_layers: int = 3  # ... and depth
    feature_layer: int = 3  # the vision block the VLM reads (``models.VISION_FEATURE_LAYER``)


class Budget:
    """Steps or seconds; ``fraction`` drives the learning-rate schedule, ``tick`` the progress bar."""

    def __init__(self, label: str, steps: int | None = None, seconds: float | None = None, bar=None):
        if (steps is None) == (seconds is None):
            raise ValueError("give exactly one of steps or seconds")
        self.steps, self.seconds, self.bar, self.step = steps, seconds, bar, 0
        self.start = time.monotonic()
        self.task = bar.add_task(label, total=steps or seconds, loss="") if bar is not None else None

    def fraction(self) -> float:
        if self.steps is not None:
            return self.step / max(self.steps, 1)
        return (time.monotonic() - self.start) / max(self.seconds, 1e-9)

    def done(self) -> bool:
        return self.fraction() >= 1.0

    def tick(self, loss: float) -> None:
        self.step += 1
        if self.bar is not None:
            done = self.step if self.steps is not None else min(time.monotonic() - self.start, self.seconds)
            self.bar.update(self.task, completed=done, loss=f"loss {loss:.3f}  step {self.step}")


def learning_rate(base: float, fraction: float, warmup: float) -> float:
    if fraction < warmup:
        return base * (fraction + 1e-3) / warmup
    progress = min((fraction - warmup) / max(1 - warmup, 1e-9), 1.0)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _optimizer(params, lr: float, weight_decay: float):
    """AdamW with no decay on gains, biases, embeddings' scalars and the temperature (as open_clip trains)."""
    import torch

    params = list(params)
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def _set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


# ------------------------------------------------------------------------------------------------ CLIP


def clip_loss(image_emb, text_emb, mask, scale):
    """Symmetric InfoNCE where each row may have several positives: -log(sum of softmax over its positives)."""
    import torch

    logits = scale * image_emb @ text_emb.T
    mask = torch.as_tensor(mask)
    i2t = torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~mask, -torch.inf), 1)
    columns = mask.any(0)  # texts true of some image in the batch
    lt, mt = logits.T[columns], mask.T[columns]
    t2i = torch.logsumexp(lt, 1) - torch.logsumexp(lt.masked_fill(~mt, -torch.inf), 1)
    return (i2t.mean() + t2i.mean()) / 2


def train_clip(pool: data.ScenePool, tokenizer, budget: Budget, seed: int = 0, config: TrainConfig | None = None):
    """A new open_clip CLIP trained on ``pool``; returns (model, open_clip config, losses)."""
    config = config or TrainConfig()
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 1])
    cfg = models.clip_config(len(tokenizer))
    model = models.new_clip(cfg).train()
    bias = torch.nn.Parameter(torch.tensor(-2.0))  # the phrase loss's threshold (~10% of kinds present); not saved
    # Dense supervision: which kind (or background) covers each patch, read from the last patch tokens by a linear
    # head that is thrown away. A ViT learns shape slowly from image-level text alone (shapes.md: same-colour AUC
    # 0.69); per-patch targets teach it where each shape is, in the very tokens the VLM later reads.
    head = torch.nn.Linear(cfg["vision_cfg"]["width"], len(KINDS) + 1)
    model.visual.output_tokens = config.patch_weight > 0 and pool.labels is not None
    optimizer = _optimizer([*model.parameters(), bias, *head.parameters()], config.clip_lr, config.weight_decay)
    encode = models.clip_token_ids(tokenizer, cfg["text_cfg"]["context_length"])
    phrases = encode([data.phrase(k) for k in KINDS])
    losses = []
    while not budget.done():
        _set_lr(optimizer, learning_rate(config.clip_lr, budget.fraction(), config.warmup))
        index = rng.choice(len(pool), size=min(config.clip_batch, len(pool)), replace=False)
        scenes = [pool.scenes[i] for i in index]
        texts, claims = data.clip_texts(scenes, rng, config.hard_negatives)
        encoded = model.visual(pool.tensor(index))
        if model.visual.output_tokens:
            encoded, tokens = encoded
        images = F.normalize(encoded, dim=-1)
        text_emb = F.normalize(models.encode_texts(model, encode(texts)), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        loss = clip_loss(images, text_emb, data.positive_mask(scenes, claims), scale)
        if config.phrase_weight:
            present = torch.tensor([[k in s.kinds for k in KINDS] for s in scenes], dtype=torch.float32)
            logits = 10.0 * images @ F.normalize(models.encode_texts(model, phrases), dim=-1).T + bias
            loss = loss + config.phrase_weight * F.binary_cross_entropy_with_logits(logits, present)
        if model.visual.output_tokens:
            targets = torch.from_numpy(pool.labels[index]).reshape(-1)
            loss = loss + config.patch_weight * F.cross_entropy(head(tokens).reshape(-1, len(KINDS) + 1), targets)
        _update(optimizer, model, loss, losses, budget)
    model.visual.output_tokens = False
    return model.eval(), cfg, losses


# ------------------------------------------------------------------------------------------------ VLM


def train_vlm(
    pool: data.ScenePool,
    model,
    processor,
    budget: Budget,
    seed: int = 0,
    config: TrainConfig | None = None,
    on_step=None,
    cooldown: bool = False,
) -> list[float]:
    """SFT of ``model`` in place on the task mixture; returns the losses. ``on_step(step)`` runs after each step.

    ``cooldown``: the second phase. A fresh optimizer and its own random stream, with the rate falling linearly
    from ``vlm_lr`` to 0 over the budget. It starts from whatever ``model`` holds, so the cool-down of a saved
    constant-rate model is the one ``pretrain`` runs."""
    import torch

    config = config or TrainConfig()

    torch.manual_seed(seed + 3 if cooldown else seed)
    rng = np.random.default_rng([seed, 3 if cooldown else 2])
    encoder = data.SFTEncoder(processor)
    tasks, weights = list(data.TASKS), np.array(list(data.TASKS.values()))
    if config.freeze_vision:
        model.model.vision_tower.requires_grad_(False)
    optimizer = _optimizer([p for p in model.parameters() if p.requires_grad], config.vlm_lr, config.weight_decay)
    model.train()
    losses = []
    while not budget.done():
        # first phase: constant after a short warm-up, so the model after k steps is the same whatever the budget
        # and the step count alone says how far SFT got (and with it how much the model still leans on the prior)
        rate = config.vlm_lr * min(1.0, (budget.step + 1) / config.vlm_warmup_steps)
        _set_lr(optimizer, rate * (1.0 - budget.fraction()) if cooldown else rate)
        task = tasks[int(rng.choice(len(tasks), p=weights / weights.sum()))]
        index = rng.choice(len(pool), size=min(config.vlm_batch, len(pool)), replace=False)
        hide = (rng.random(len(index)) < config.hidden_companion) & pool.can_hide(index)
        shown = [data.hide_companions(pool.scenes[i]) if h else None for i, h in zip(index, hide)]
        examples = [data.sft_example(pool.scenes[i], task, rng, s) for i, s in zip(index, shown)]
        ids, mask, labels = encoder.batch(examples)
        noise = np.where(rng.random(len(index)) < config.noisy, rng.integers(*config.noise_t, size=len(index)), -1)
        pixels = pool.tensor(index, hide, noise, seed=int(rng.integers(2**31)))
        loss = model(input_ids=ids, attention_mask=mask, pixel_values=pixels, labels=labels).loss
        _update(optimizer, model, loss, losses, budget)
        if on_step is not None:
            model.eval()
            on_step(budget.step)
            model.train()
    return losses


def _update(optimizer, model, loss, losses: list[float], budget: Budget) -> None:
    """One optimizer step on ``loss`` (gradients clipped to norm 1), recorded in ``losses`` and the budget."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    losses.append(loss.item())
    budget.tick(losses[-1])
