"""``prefgen shapes`` (pretrain, scenes, lmms-task). Heavy libraries load inside the commands only."""

from __future__ import annotations

from pathlib import Path

import click

from prefgen.cli.output import echo_metrics

# the defaults of ``shapes.pretrain.run.pretrain`` (not imported here: it loads numpy); a test keeps them equal
CLIP_SHARE, CLIP_STEPS, VLM_STEPS, COOLDOWN_STEPS = 0.25, 1450, 5500, 1000


@click.group()
def shapes() -> None:
    """The shapes world: procedural scenes with exact ground truth, and its small CPU-trained models."""


@shapes.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for shapes-clip/, shapes-vlm/ and pretrain.json.",
)
@click.option(
    "--clip-steps", default=CLIP_STEPS, show_default=True, type=click.IntRange(1), help="CLIP training steps."
)
@click.option(
    "--vlm-steps",
    default=VLM_STEPS,
    show_default=True,
    type=click.IntRange(1),
    help="VLM SFT steps at a constant rate: fewer steps, more hallucination (see the README's table).",
)
@click.option(
    "--cooldown-steps",
    default=COOLDOWN_STEPS,
    show_default=True,
    type=click.IntRange(0),
    help="VLM SFT steps after those, with the rate falling to 0; 0: none.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(1),
    help="A wall-clock budget for data and both models instead of "
    "steps (split by --clip-share); results then depend on the machine's speed.",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--scenes", "n_scenes", type=int, help="Training scenes to render (default 16000).")
@click.option("--eval-scenes", default=200, show_default=True, help="Held-out scenes for the final report; 0: none.")
@click.option(
    "--clip-share",
    default=CLIP_SHARE,
    show_default=True,
    type=click.FloatRange(0.05, 0.95),
    help="Share of the training time (or steps) that goes to the CLIP; the VLM gets the rest.",
)
@click.option(
    "--clip-from",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A trained shapes CLIP folder to start the VLM from instead of training one (the shipped one: "
    "prefgen/shapes/checkpoints/shapes-clip, which seed 0 reproduces bit for bit).",
)
@click.option(
    "--snapshot",
    "snapshots",
    multiple=True,
    type=click.IntRange(1),
    help="Also save the VLM after this many constant-rate steps, as OUT/shapes-vlm-step<K> (repeatable); the "
    "k-step model of any longer run from the same seed.",
)
@click.option("--threads", type=int, help="torch CPU threads (default: torch's choice).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
def pretrain(
    out: Path,
    clip_steps: int,
    vlm_steps: int,
    cooldown_steps: int,
    seconds: float | None,
    seed: int,
    n_scenes: int | None,
    eval_scenes: int,
    clip_share: float,
    clip_from: Path | None,
    snapshots: tuple[int, ...],
    threads: int | None,
    quiet: bool,
    force: bool,
) -> None:
    """Train the shapes-world CLIP and VLM from scratch (about 28 minutes on 2 CPU cores by default).

    The models load like any other: `models: {vlm: {path: OUT/shapes-vlm}, clip: {model: shapes-clip,
    path: OUT/shapes-clip}}` in a recipe.
    """
    if out.exists() and any(out.iterdir()) and not force:
        raise click.UsageError(f"{out} is not empty; pass --force to write into it anyway")
    snapshots = tuple(sorted(set(snapshots)))
    late = [k for k in snapshots if k > vlm_steps]
    if late and not seconds:
        raise click.UsageError(f"--snapshot {late[0]} is after the last VLM step ({vlm_steps}); raise --vlm-steps")
    if threads:
        import torch

        torch.set_num_threads(threads)
    from prefgen.shapes.pretrain.run import pretrain as run

    steps = None if seconds else (clip_steps, vlm_steps, cooldown_steps)
    report = run(
        out,
        seconds=seconds,
        steps=steps,
        seed=seed,
        progress=not quiet,
        n_scenes=n_scenes,
        eval_scenes=eval_scenes,
        clip_share=clip_share,
        clip_from=clip_from,
        snapshots=snapshots,
    )
    cool = report["vlm_cooldown"]
    clip = report["clip"]
    clip_line = (
        f"CLIP: {clip['steps']} steps, loss {clip['first_loss']:.3f} -> {clip['last_loss']:.3f}"
        if clip["steps"]
        else f"CLIP: from {clip_from}"
    )
    click.echo(
        f"{clip_line}   VLM: {report['vlm']['steps']} steps, loss "
        f"{report['vlm']['first_loss']:.3f} -> {report['vlm']['last_loss']:.3f}"
        + (f", then {cool['steps']} cooling down -> {cool['last_loss']:.3f}" if cool["steps"] else "")
    )
    if "eval" in report:
        echo_metrics("held-out CHAIR", report["eval"]["chair"])
        if "clip_auc" in report["eval"]:  # not when the CLIP came from --clip-from
            echo_metrics("CLIP AUC", report["eval"]["clip_auc"])
    clip_dir = clip_from or out / "shapes-clip"
    click.echo(f"models -> {out / 'shapes-vlm'}, {clip_dir}; report -> {out / 'pretrain.json'}")
    for k in snapshots:
        click.echo(f"snapshot after {k} VLM steps -> {out / f'shapes-vlm-step{k}'}")


@shapes.command("scenes")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("-n", "--n", "n", default=64, show_default=True, help="Number of scenes.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--split",
    type=click.Choice(["train", "eval"]),
    default="eval",
    show_default=True,
    help="train: with the co-occurrence prior; eval: breaking it.",
)
def scenes(out: Path, n: int, seed: int, split: str) -> None:
    """Write scenes as PNG files plus ground_truth.jsonl (an image_folder source for recipes)."""
    from prefgen.shapes.world import write_scene_folder

    write_scene_folder(out, n, seed, split)
    click.echo(f"{n} {split} scenes -> {out} (ground truth: {out / 'ground_truth.jsonl'})")


@shapes.command("lmms-task")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Task folder.")
@click.option("-n", "--n", "n", default=50, show_default=True, type=click.IntRange(1), help="Held-out scenes.")
@click.option("--seed", default=0, show_default=True, help="Which scenes and POPE negatives (as `eval --seed`).")
def lmms_task(out: Path, n: int, seed: int) -> None:
    """Write a local lmms-eval task from held-out shapes scenes: POPE's three splits (the questions of `prefgen eval
    --bench shapes-pope`, tag shapes_pope) and captioning scored with CHAIR (shapes_caption). lmms-eval runs it
    offline with `--include_path OUT`; `prefgen eval --bench lmms` writes and runs it for you."""
    from prefgen.eval.lmms import write_task

    counts = write_task(out, n, seed)
    click.echo(", ".join(f"{task}: {rows} rows" for task, rows in counts.items()) + f" -> {out}")
