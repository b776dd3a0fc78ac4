"""Train the shapes-world CLIP and VLM from scratch on a CPU: ``pretrain(out_dir, seconds=600)``.

1. A pool of training scenes is rendered once (``data.ScenePool``).
2. The CLIP is trained on it (``train.train_clip``), or an earlier run's is loaded.
3. A tiny LLaVA starts from the CLIP's vision tower and is fine-tuned (``train.train_vlm``): at a constant rate after
   warm-up, then a cool-down with the rate falling to 0.
4. Both models are saved in their libraries' layouts (``models.py``), with a report of the run (``pretrain.json``).

Budgets are wall-clock seconds (the schedule follows elapsed time, so results vary a little run to run) or exact
step counts (deterministic for a seed); ``PretrainPlan`` shares them out between the phases.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from prefgen.shapes.metrics import clip_auc, run_chair, vlm_describer
from prefgen.shapes.pretrain import data, models
from prefgen.shapes.pretrain.train import Budget, TrainConfig, train_clip, train_vlm
from prefgen.shapes.world import make_scenes

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
