"""``prefgen shapes`` (pretrain, scenes) and ``prefgen eval``. Heavy libraries load inside the commands only.

Wire into ``prefgen/cli.py`` with: ``from prefgen.shapes.cli import eval_command, shapes`` then
``cli.add_command(shapes)`` and ``cli.add_command(eval_command)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

BENCHES = ("shapes-chair", "shapes-pope", "shapes-skills", "shapes-clip", "pope", "chair", "reward")  # as in prefgen.shapes.bench

# the defaults of ``shapes.train.pretrain`` (not imported here: that module loads numpy); a test keeps them equal
CLIP_SHARE, CLIP_STEPS, VLM_STEPS, COOLDOWN_STEPS = 0.25, 1450, 5500, 1000


@click.group()
def shapes() -> None:
    """The shapes world: procedural scenes with exact ground truth, and its small CPU-trained models."""


@shapes.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for shapes-clip/, shapes-vlm/ and pretrain.json.")
@click.option("--clip-steps", default=CLIP_STEPS, show_default=True, type=click.IntRange(1),
              help="CLIP training steps.")
@click.option("--vlm-steps", default=VLM_STEPS, show_default=True, type=click.IntRange(1),
              help="VLM SFT steps at a constant rate: fewer steps, more hallucination (see the README's table).")
@click.option("--cooldown-steps", default=COOLDOWN_STEPS, show_default=True, type=click.IntRange(0),
              help="VLM SFT steps after those, with the rate falling to 0; 0: none.")
@click.option("--seconds", type=click.FloatRange(1), help="A wall-clock budget for data and both models instead of "
              "steps (split by --clip-share); results then depend on the machine's speed.")
@click.option("--seed", default=0, show_default=True)
@click.option("--scenes", "n_scenes", type=int, help="Training scenes to render (default 16000).")
@click.option("--eval-scenes", default=200, show_default=True, help="Held-out scenes for the final report; 0: none.")
@click.option("--clip-share", default=CLIP_SHARE, show_default=True, type=click.FloatRange(0.05, 0.95),
              help="Share of the training time (or steps) that goes to the CLIP; the VLM gets the rest.")
@click.option("--threads", type=int, help="torch CPU threads (default: torch's choice).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
def pretrain(out: Path, clip_steps: int, vlm_steps: int, cooldown_steps: int, seconds: float | None, seed: int,
             n_scenes: int | None, eval_scenes: int, clip_share: float, threads: int | None, quiet: bool,
             force: bool) -> None:
    """Train the shapes-world CLIP and VLM from scratch (about 28 minutes on 2 CPU cores by default).

    The models load like any other: `models: {vlm: {path: OUT/shapes-vlm}, clip: {model: shapes-clip,
    path: OUT/shapes-clip}}` in a recipe.
    """
    if out.exists() and any(out.iterdir()) and not force:
        raise click.UsageError(f"{out} is not empty; pass --force to write into it anyway")
    if threads:
        import torch

        torch.set_num_threads(threads)
    from prefgen.shapes.train import pretrain as run

    steps = None if seconds else (clip_steps, vlm_steps, cooldown_steps)
    report = run(out, seconds=seconds, steps=steps, seed=seed, progress=not quiet, n_scenes=n_scenes,
                 eval_scenes=eval_scenes, clip_share=clip_share)
    cool = report["vlm_cooldown"]
    click.echo(f"CLIP: {report['clip']['steps']} steps, loss {report['clip']['first_loss']:.3f} -> "
               f"{report['clip']['last_loss']:.3f}   VLM: {report['vlm']['steps']} steps, loss "
               f"{report['vlm']['first_loss']:.3f} -> {report['vlm']['last_loss']:.3f}"
               + (f", then {cool['steps']} cooling down -> {cool['last_loss']:.3f}" if cool["steps"] else ""))
    if "eval" in report:
        _echo_metrics("held-out CHAIR", report["eval"]["chair"])
        _echo_metrics("CLIP AUC", report["eval"]["clip_auc"])
    click.echo(f"models -> {out / 'shapes-vlm'}, {out / 'shapes-clip'}; report -> {out / 'pretrain.json'}")


@shapes.command("scenes")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("-n", "--n", "n", default=64, show_default=True, help="Number of scenes.")
@click.option("--seed", default=0, show_default=True)
@click.option("--split", type=click.Choice(["train", "eval"]), default="eval", show_default=True,
              help="train: with the co-occurrence prior; eval: breaking it.")
def scenes(out: Path, n: int, seed: int, split: str) -> None:
    """Write scenes as PNG files plus ground_truth.jsonl (an image_folder source for recipes)."""
    from prefgen.shapes.world import write_scene_folder

    write_scene_folder(out, n, seed, split)
    click.echo(f"{n} {split} scenes -> {out} (ground truth: {out / 'ground_truth.jsonl'})")


@click.command("eval")
@click.option("--bench", required=True, type=click.Choice(BENCHES), help="What to measure.")
@click.option("--model", type=click.Path(exists=True, path_type=Path), help="VLM folder (every bench but "
              "shapes-clip and reward).")
@click.option("--clip", type=click.Path(exists=True, path_type=Path), help="open_clip folder (shapes-clip).")
@click.option("--n", default=500, show_default=True, help="Held-out scenes (shapes-* benches).")
@click.option("--seed", default=0, show_default=True, help="Which held-out scenes and POPE negatives.")
@click.option("--questions", type=click.Path(exists=True, path_type=Path), help="POPE jsonl (bench pope).")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Image folder (benches pope and chair).")
@click.option("--coco-annotations", type=click.Path(exists=True, path_type=Path),
              help="COCO instances JSON (bench chair).")
@click.option("--limit", type=int, help="At most this many questions or images (benches pope and chair).")
@click.option("--store", help="STORE or STORE@VERSION built on shapes scenes (bench reward).")
@click.option("--ground-truth", type=click.Path(exists=True, path_type=Path),
              help="ground_truth.jsonl or its scene folder (bench reward).")
@click.option("--short-answer/--plain", default=False,
              help="Append the single-word-answer instruction to questions (POPE, shapes-skills).")
@click.option("--device", default="auto", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSON report [eval-BENCH.json].")
def eval_command(bench: str, model: Path | None, clip: Path | None, n: int, seed: int, questions: Path | None,
                 images: Path | None, coco_annotations: Path | None, limit: int | None, store: str | None,
                 ground_truth: Path | None, short_answer: bool, device: str, out: Path | None) -> None:
    """Measure hallucination (CHAIR, POPE), a VLM's skills (QA, self-questioning, self-enhancement, noised images),
    a CLIP's AUC, or a shapes store's reward accuracy; print the numbers
    and write them as JSON."""
    from prefgen.shapes import bench as benches

    need = {"shapes-chair": {"model": model}, "shapes-pope": {"model": model}, "shapes-skills": {"model": model},
            "shapes-clip": {"clip": clip},
            "pope": {"model": model, "questions": questions, "images": images},
            "chair": {"model": model, "coco-annotations": coco_annotations, "images": images},
            "reward": {"store": store, "ground-truth": ground_truth}}[bench]
    missing = [f"--{name}" for name, value in need.items() if value is None]
    if missing:
        raise click.UsageError(f"--bench {bench} needs {', '.join(missing)}")
    suffix = benches.SHORT_ANSWER if short_answer else ""
    report = {
        "shapes-chair": lambda: benches.shapes_chair(model, n, seed, device=device),
        "shapes-pope": lambda: benches.shapes_pope(model, n, seed, suffix, device=device),
        "shapes-skills": lambda: benches.shapes_skills(model, n, seed, suffix, device=device),
        "shapes-clip": lambda: benches.shapes_clip(clip, n, seed, device=device),
        "pope": lambda: benches.real_pope(model, questions, images, limit, suffix, device=device),
        "chair": lambda: benches.real_chair(model, coco_annotations, images, limit, device=device),
        "reward": lambda: benches.store_reward(store, ground_truth),
    }[bench]()
    for name, value in report.items():
        if isinstance(value, dict):
            _echo_metrics(name, {k: v for k, v in value.items() if isinstance(v, (int, float))})
            for kind, counts in value.items():
                if isinstance(counts, dict) and all(isinstance(v, (int, float)) for v in counts.values()):
                    _echo_metrics(f"  {kind}", counts)
            for kind, counts in value.get("by_kind", {}).items():
                _echo_metrics(f"    {kind}", counts)
    _echo_metrics(bench, {k: v for k, v in report.items() if isinstance(v, (int, float)) and k != "seed"})
    out = out or Path(f"eval-{bench}.json")
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    click.echo(f"report -> {out}")


def _echo_metrics(title: str, values: dict) -> None:
    if values:
        shown = "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        click.echo(f"{title:<15} {shown}")
