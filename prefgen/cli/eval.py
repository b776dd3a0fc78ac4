"""``prefgen eval``: the named benches (shapes world, real-data POPE and CHAIR, reward accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from prefgen.cli.output import echo_metrics

BENCHES = (
    "shapes-chair",
    "shapes-pope",
    "shapes-skills",
    "shapes-clip",
    "pope",
    "chair",
    "reward",
)  # as in prefgen.eval.benches


@click.command("eval")
@click.option("--bench", required=True, type=click.Choice(BENCHES), help="What to measure.")
@click.option(
    "--model",
    type=click.Path(exists=True, path_type=Path),
    help="VLM folder (every bench but shapes-clip and reward).",
)
@click.option("--clip", type=click.Path(exists=True, path_type=Path), help="open_clip folder (shapes-clip).")
@click.option("--n", default=500, show_default=True, help="Held-out scenes (shapes-* benches).")
@click.option("--seed", default=0, show_default=True, help="Which held-out scenes and POPE negatives.")
@click.option("--questions", type=click.Path(exists=True, path_type=Path), help="POPE jsonl (bench pope).")
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Image folder (benches pope and chair).",
)
@click.option(
    "--coco-annotations", type=click.Path(exists=True, path_type=Path), help="COCO instances JSON (bench chair)."
)
@click.option("--limit", type=int, help="At most this many questions or images (benches pope and chair).")
@click.option("--store", help="STORE or STORE@VERSION built on shapes scenes (bench reward).")
@click.option(
    "--ground-truth",
    type=click.Path(exists=True, path_type=Path),
    help="ground_truth.jsonl or its scene folder (bench reward).",
)
@click.option(
    "--short-answer/--plain",
    default=False,
    help="Append the single-word-answer instruction to questions (POPE, shapes-skills).",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSON report [eval-BENCH.json].")
def eval_command(
    bench: str,
    model: Path | None,
    clip: Path | None,
    n: int,
    seed: int,
    questions: Path | None,
    images: Path | None,
    coco_annotations: Path | None,
    limit: int | None,
    store: str | None,
    ground_truth: Path | None,
    short_answer: bool,
    device: str,
    out: Path | None,
) -> None:
    """Measure hallucination (CHAIR, POPE), a VLM's skills (QA, self-questioning, self-enhancement, noised images),
    a CLIP's AUC, or a shapes store's reward accuracy; print the numbers
    and write them as JSON."""
    from prefgen.eval import benches

    need = {
        "shapes-chair": {"model": model},
        "shapes-pope": {"model": model},
        "shapes-skills": {"model": model},
        "shapes-clip": {"clip": clip},
        "pope": {"model": model, "questions": questions, "images": images},
        "chair": {"model": model, "coco-annotations": coco_annotations, "images": images},
        "reward": {"store": store, "ground-truth": ground_truth},
    }[bench]
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
            echo_metrics(name, {k: v for k, v in value.items() if isinstance(v, (int, float))})
            for kind, counts in value.items():
                if isinstance(counts, dict) and all(isinstance(v, (int, float)) for v in counts.values()):
                    echo_metrics(f"  {kind}", counts)
            for kind, counts in value.get("by_kind", {}).items():
                echo_metrics(f"    {kind}", counts)
    echo_metrics(bench, {k: v for k, v in report.items() if isinstance(v, (int, float)) and k != "seed"})
    out = out or Path(f"eval-{bench}.json")
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    click.echo(f"report -> {out}")
