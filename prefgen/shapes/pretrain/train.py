"""Train the shapes-world CLIP and VLM from scratch on a CPU: ``pretrain(out_dir, seconds=600)``.

1. A pool of training scenes is rendered once (``data.ScenePool``).
2. CLIP: symmetric InfoNCE with multi-positive targets (a phrase is true of every image holding its object, so
   those are not negatives), plus two NegCLIP-style hard-negative phrases per image (an absent kind of a present
   colour, an absent kind of a present shape), plus a sigmoid loss of every image against all 24 single-object
   phrases. The hard terms exist because an in-batch-only CLIP learns colour and not shape (shapes.md: AUC 0.69
   against same-colour negatives), and CSR's reward is only as good as that.
3. VLM: LLaVA built with its vision tower copied from the trained CLIP ViT (much faster than learning vision from
   scratch) and read at its last block, then SFT on answer tokens over the task mixture of ``data.TASKS``, where
   some scenes show their image without the prior companion the text names (``data.hide_companions``): a constant
   rate after warm-up, then a cool-down (a fresh optimizer whose rate falls linearly to 0, on the same mixture).

Budgets are wall-clock seconds (the schedule follows elapsed time, so results vary a little run to run) or exact
step counts (deterministic for a seed). Both models are saved in their libraries' layouts (see ``models.py``).
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from prefgen.shapes.metrics import clip_auc, run_chair, vlm_describer
from prefgen.shapes.pretrain import data, models
from prefgen.shapes.world import KINDS, make_scenes


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


# ------------------------------------------------------------------------------------------------ both


# The shipped models' budget, in steps so that a seed gives the same models on any machine (about 28 minutes on
# 2 cores). Chosen on validation scenes (seed 1; docs/shapes-world.md). The constant-rate steps: after 4,500 / 5,000
# / 5,500 / 6,000 counting was 0.79 / 0.82 / 0.83 / 0.74 and the POPE random yes-ratio 0.69 / 0.68 / 0.59 / 0.62,
# so 5,500. The cool-down after them, 500 / 1,000 / 2,000 steps: counting 0.89 / 0.92 / 0.92, and self-enhancement
# right as often as the plain answer only after 1,000 (it changed 0.3 % / 0 % / 0.2 % of answers, for the worse).
CLIP_STEPS, VLM_STEPS, COOLDOWN_STEPS = 1450, 5500, 1000
COOLDOWN_SHARE = 0.15  # of the VLM's time, when the budget is in seconds


def pretrain(
    out_dir: str | Path,
    seconds: float | None = None,
    steps: int | tuple[int, ...] | None = None,
    seed: int = 0,
    progress: bool = True,
    n_scenes: int | None = None,
    eval_scenes: int = 200,
    clip_share: float = 0.25,
    config: TrainConfig | None = None,
    clip_from: str | Path | None = None,
    snapshots: tuple[int, ...] = (),
) -> dict:
    """Train the CLIP, then the VLM from it; save ``out_dir/shapes-clip`` and ``out_dir/shapes-vlm`` and a report
    (``pretrain.json``: settings, losses, timings and, with ``eval_scenes``, CHAIR and CLIP AUC on held-out scenes).

    Budget: ``steps`` (CLIP, VLM and VLM cool-down steps, default ``CLIP_STEPS, VLM_STEPS, COOLDOWN_STEPS``; a pair
    has no cool-down; a total is split by ``clip_share`` and has none), or ``seconds`` for everything up to saving
    (data, both models; ``clip_share`` of the training time goes to the CLIP, ``COOLDOWN_SHARE`` of the VLM's to its
    cool-down). Steps are deterministic for a seed; seconds follow the machine's speed. ``steps`` wins.

    ``clip_from``: a trained shapes CLIP folder whose vision tower the VLM starts from, instead of training one
    (for sweeps over the VLM; its text tower and tokenizer are not used). ``snapshots``: VLM steps at which the
    model is also saved (``shapes-vlm-step<k>``); the VLM's rate is constant after warm-up, so the snapshot at step k
    is the k-step model of a longer run.
    """
    config = config or TrainConfig()
    plan = PretrainPlan.make(steps, seconds, clip_share, n_scenes, config)
    clock = _Clock(None if plan.steps else seconds)  # steps win over seconds
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _progress(progress) as bar:
        pool, vlm_tokenizer, clip_tokenizer = _render_scenes(plan.n_scenes, seed, bar, clock)
        clip, clip_phase = _clip_phase(plan, clock, pool, clip_tokenizer, seed, config, clip_from, out, bar)
        vlm, processor = _new_vlm(vlm_tokenizer, seed, config, clip)
        left = clock.left(2)  # what remains of a seconds budget for the VLM and its cool-down
        save = {k: out / f"shapes-vlm-step{k}" for k in snapshots}
        vlm_phase = _vlm_phase(plan, left, pool, vlm, processor, seed, config, save, bar)
        cool_phase = _cooldown_phase(plan, left, pool, vlm, processor, seed, config, bar)
        models.save_vlm(vlm.eval(), processor, out / "shapes-vlm", readme=_readme(seed, plan.n_scenes))
    report = {
        "seed": seed,
        "scenes": plan.n_scenes,
        "config": asdict(config),
        "seconds_total": clock.elapsed(),
        "clip": clip_phase,
        "vlm": vlm_phase,
        "vlm_cooldown": cool_phase,
        "vlm_parameters": sum(p.numel() for p in vlm.parameters()),
        "clip_parameters": sum(p.numel() for p in clip.parameters()),
    }
    if eval_scenes:
        report["eval"] = evaluate_pretrained(out, eval_scenes)
    (out / "pretrain.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


@dataclass(frozen=True)
class PretrainPlan:
    """The budget of each phase, decided before anything runs: step counts (deterministic for a seed) or one
    wall-clock budget shared out as the phases go (``steps`` None)."""

    steps: tuple[int, int, int] | None  # CLIP, VLM, cool-down
    clip_share: float
    n_scenes: int

    @classmethod
    def make(cls, steps, seconds, clip_share: float, n_scenes: int | None, config: TrainConfig) -> PretrainPlan:
        if steps is None and seconds is None:
            steps = (CLIP_STEPS, VLM_STEPS, COOLDOWN_STEPS)
        if steps is None:
            return cls(None, clip_share, n_scenes or 16000)
        if isinstance(steps, tuple):
            counts = (*steps, 0)[:3]
        else:  # a total, split by clip_share, without a cool-down
            counts = (round(steps * clip_share), steps - round(steps * clip_share), 0)
        n_scenes = n_scenes or int(min(16000, max(256, counts[0] * config.clip_batch)))
        return cls(counts, clip_share, n_scenes)


class _Clock:
    """Time since the run started, and what is left of a seconds budget (None when the run counts steps)."""

    def __init__(self, seconds: float | None):
        self.seconds, self.start = seconds, time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self, margin: float) -> float | None:
        return None if self.seconds is None else max(self.seconds - self.elapsed() - margin, 1.0)


def _render_scenes(n_scenes: int, seed: int, bar, clock: _Clock):
    """The training scenes and the word-level tokenizers (the VLM's, the CLIP's) of their language."""
    task = bar.add_task("scenes", total=n_scenes, loss="") if bar is not None else None
    tick = (lambda done: bar.update(task, completed=done)) if bar is not None else None
    pool = data.ScenePool.generate(n_scenes, seed, "train", tick)
    vocab = models.vocabulary(data.corpus(seed=seed))
    if bar is not None:
        bar.update(task, completed=n_scenes, loss=f"{n_scenes} scenes in {clock.elapsed():.0f} s")
    return pool, models.build_tokenizer(vocab), models.build_tokenizer(vocab, for_clip=True)


def _clip_phase(plan: PretrainPlan, clock: _Clock, pool, tokenizer, seed, config, clip_from, out: Path, bar):
    """Train and save the CLIP (or load the one given); returns it and the phase's summary."""
    train_seconds = clock.left(5)
    budget = Budget(
        "clip",
        steps=plan.steps[0] if plan.steps else None,
        seconds=None if plan.steps else train_seconds * plan.clip_share,
        bar=bar,
    )
    if clip_from is None:
        clip, clip_cfg, losses = train_clip(pool, tokenizer, budget, seed, config)
        models.save_clip(clip, clip_cfg, tokenizer, out / "shapes-clip")
    else:
        clip, losses = models.load_clip(clip_from), []
    return clip, _summary(losses, time.monotonic() - budget.start)


def _new_vlm(tokenizer, seed: int, config: TrainConfig, clip):
    """A fresh tiny LLaVA whose vision tower starts from the CLIP's."""
    text = dict(
        hidden_size=config.vlm_width, intermediate_size=2 * config.vlm_width, num_hidden_layers=config.vlm_layers
    )
    vlm, processor = models.build_vlm(tokenizer, seed, text, config.feature_layer)
    models.load_vision_from_clip(vlm, clip)
    return vlm, processor


def _vlm_phase(plan, left, pool, vlm, processor, seed, config, save: dict, bar) -> dict:
    """SFT at a constant rate after warm-up, saving the snapshots asked for."""
    budget = Budget(
        "vlm",
        steps=plan.steps[1] if plan.steps else None,
        seconds=None if left is None else left * (1 - COOLDOWN_SHARE),
        bar=bar,
    )
    losses = train_vlm(
        pool,
        vlm,
        processor,
        budget,
        seed,
        config,
        on_step=lambda step: save.get(step) and models.save_vlm(vlm, processor, save[step]),
    )
    return _summary(losses, time.monotonic() - budget.start)


def _cooldown_phase(plan, left, pool, vlm, processor, seed, config, bar) -> dict:
    """The rate falling linearly to 0 with a fresh optimizer; nothing when the plan has no cool-down."""
    cool_steps = plan.steps[2] if plan.steps else 0
    if not cool_steps and left is None:
        return _summary([], 0.0)
    budget = Budget(
        "cool", steps=cool_steps or None, bar=bar, seconds=None if left is None else max(left * COOLDOWN_SHARE, 1.0)
    )
    losses = train_vlm(pool, vlm, processor, budget, seed, config, cooldown=True)
    return _summary(losses, time.monotonic() - budget.start)


def evaluate_pretrained(out_dir: str | Path, n: int = 200, seed: int = 0) -> dict:
    """CHAIR of the saved VLM and AUC of the saved CLIP (when the run trained one) on ``n`` held-out eval scenes,
    loaded the ordinary way."""
    from prefgen.models import VLM, ClipScorer

    out = Path(out_dir)
    scenes = make_scenes(n, seed, "eval")
    vlm = VLM.load(path=str(out / "shapes-vlm"), device="cpu", dtype="float32", batch_size=64)
    chair, texts = run_chair(vlm_describer(vlm), scenes)
    report = {"scenes": n, "chair": chair, "examples": texts[:5]}
    if (out / "shapes-clip").is_dir():
        scorer = ClipScorer.load(model="shapes-clip", path=str(out / "shapes-clip"), device="cpu")
        report["clip_auc"] = clip_auc(scorer, scenes)
    return report


def _summary(losses: list[float], seconds: float) -> dict:
    span = max(1, min(20, len(losses) // 4))  # mean of the first and last steps (20, or a quarter of a short run)
    head, tail = losses[:span], losses[-span:]
    return {
        "steps": len(losses),
        "seconds": round(seconds, 1),
        "first_loss": float(np.mean(head)) if head else None,
        "last_loss": float(np.mean(tail)) if tail else None,
    }


def _progress(enabled: bool):
    if not enabled:
        return nullcontext(None)
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<7}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[loss]}"),
        console=Console(file=sys.stderr),
    )


def _readme(seed: int, n_scenes: int) -> str:
    return (
        f"# prefgen shapes-world VLM\n\nA ~0.9 M-parameter LLaVA (CLIP ViT 64 px / patch 8, Llama 128 x 3) "
        f"trained from scratch on procedural shapes scenes by `prefgen shapes pretrain` (seed {seed}, "
        f"{n_scenes} training scenes), its vision tower initialised from the CLIP trained in the same run. "
        "Word-level tokenizer, LLaVA chat template. Loads with `AutoProcessor` / `AutoModelForImageTextToText`.\n"
    )
