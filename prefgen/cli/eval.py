"""``prefgen eval``: the named benches of ``prefgen.eval.benches.BENCHES``, and ``prefgen eval chair-sample``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from prefgen.cli.output import echo_metrics
from prefgen.eval.benches import BENCHES, Options

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_HELP = (
    "Measure hallucination (CHAIR, POPE), a VLM's skills, a CLIP's AUC, or a shapes store's reward accuracy; print "
    "the numbers and write them as JSON. Benches:\n\n"
    + "\n\n".join(f"{name}: {bench.help}" for name, bench in BENCHES.items())
)


@click.group(
    "eval",
    invoke_without_command=True,
    help=_HELP,
    context_settings={"show_default": True},
    subcommand_metavar="[chair-sample ...]",
)
@click.option("--bench", type=click.Choice(list(BENCHES)), help="What to measure.")
@click.option("--model", type=click.Path(exists=True, path_type=Path), help="VLM folder (answers/captions made here).")
@click.option("--clip", type=click.Path(exists=True, path_type=Path), help="open_clip folder (shapes-clip).")
@click.option("--n", default=500, help="Held-out scenes (shapes-* benches).")
@click.option("--seed", default=0, help="Which held-out scenes and POPE negatives (shapes-* benches).")
@click.option("--answers", multiple=True, type=_FILE, help="Answers or captions to score (pope, chair), JSON lines.")
@click.option("--questions", multiple=True, type=_FILE, help="POPE question file, JSON lines (repeatable).")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Image folder.")
@click.option(
    "--instances",
    "--coco-annotations",
    "instances",
    multiple=True,
    type=_FILE,
    help="COCO instances JSON (chair; repeatable: train and val).",
)
@click.option("--captions", multiple=True, type=_FILE, help="COCO reference captions JSON (chair; repeatable).")
@click.option("--synonyms", type=_FILE, help="The reference's synonyms.txt (chair) [prefgen's own table].")
@click.option("--image-ids", type=_FILE, help="Only these image ids, one a line (chair; see chair-sample).")
@click.option("--limit", type=int, help="At most this many questions per file or images (with --model).")
@click.option("--store", help="STORE or STORE@VERSION built on shapes scenes (reward).")
@click.option("--ground-truth", type=click.Path(exists=True, path_type=Path), help="Shapes ground truth (reward).")
@click.option(
    "--short-answer/--plain", default=False, help="Append the single-word-answer instruction (pope, shapes-*)."
)
@click.option("--prompt", help="Description prompt (chair with --model) [Describe this image.]")
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="Generation length (with --model).")
@click.option("--device", default="auto")
@click.option(
    "--engine",
    type=click.Choice(["hf", "vllm"]),
    default="hf",
    show_default=True,
    help="VLM engine of the shapes-* benches that run --model.",
)
@click.option("--tasks", help="lmms-eval tasks, comma-separated (lmms): shapes_pope, shapes_caption, pope_pop...")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSON report [eval-BENCH.json].")
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress bars: what the libraries print goes to a log beside the report."
)
@click.pass_context
def eval_command(ctx: click.Context, bench: str | None, out: Path | None, quiet: bool, **given) -> None:
    if ctx.invoked_subcommand is not None:
        return
    if bench is None:
        raise click.UsageError("give --bench NAME, or a command (chair-sample)")
    options = Options(**given)
    missing = BENCHES[bench].missing(options)
    if missing:
        raise click.UsageError(f"--bench {bench} needs {missing}")
    out = out or Path(f"eval-{bench}.json")
    if quiet:  # transformers' "Loading weights" bars and the like: into eval-BENCH.log (removed when empty)
        from prefgen.engine.logs import capture

        with capture(out.with_suffix(".log")):
            report = BENCHES[bench].run(options)
    else:
        report = BENCHES[bench].run(options)
    _echo(bench, report)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    click.echo(f"report -> {out}")


def _echo(bench: str, report: dict) -> None:
    for key in ("synonyms", "rule"):
        if key in report:
            click.echo(f"{key}: {report[key]}")
    for name, value in report.items():
        if isinstance(value, dict):
            echo_metrics(name, {k: v for k, v in value.items() if isinstance(v, (int, float))})
            for kind, counts in value.items():
                if isinstance(counts, dict) and all(isinstance(v, (int, float)) for v in counts.values()):
                    echo_metrics(f"  {kind}", counts)
            for kind, counts in value.get("by_kind", {}).items():
                echo_metrics(f"    {kind}", counts)
    echo_metrics(bench, {k: v for k, v in report.items() if isinstance(v, (int, float)) and k != "seed"})


@eval_command.command("chair-sample")
@click.option("--instances", multiple=True, required=True, type=_FILE, help="COCO instances JSON (repeatable).")
@click.option("-n", "n", default=500, show_default=True, type=click.IntRange(min=1), help="How many image ids.")
@click.option("--seed", default=0, show_default=True, help="Which ones.")
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Draw only among the images found in this folder.",
)
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Id list to write.")
def chair_sample(instances: tuple[Path, ...], n: int, seed: int, images: Path | None, out: Path) -> None:
    """Draw n image ids for CHAIR (one a line), the same for the same files and seed on any machine, so that two
    runs compare on the same images (give it to --image-ids or chair:ids=...)."""
    from prefgen.eval.chair import sample_image_ids

    ids = sample_image_ids(instances, n, seed, images)
    out.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    click.echo(f"{len(ids)} image ids (seed {seed}) -> {out}")
