"""``prefgen models``: model utilities. Heavy libraries load inside the commands, never when the CLI starts."""

from __future__ import annotations

from pathlib import Path

import click

from prefgen.models.tiny.families import FAMILIES  # a plain tuple; the module imports nothing heavy at the top


@click.group()
def models() -> None:
    """Model utilities."""


#: Said after the recipe hints, which are absolute so that they work from any recipe.
RELATIVE_NOTE = "(a relative path in a recipe is read from the recipe file's folder, not from the current one)"


@models.command()
@click.option("--family", type=click.Choice([*FAMILIES, "all"]), help="VLM family to build (`all`: one folder each).")
@click.option("--clip", "clip", is_flag=True, help="Build a tiny open_clip model instead of a VLM.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
def tiny(family: str | None, clip: bool, out: Path, seed: int, force: bool) -> None:
    """Build tiny random models offline, for tests and for trying recipes without downloads.

    The VLMs (a few hundred thousand parameters, a tokenizer trained offline, the family's chat template and
    processor) and the CLIP load exactly like real models: `models: {vlm: {path: OUT}}` or
    `models: {clip: {model: tiny, path: OUT}}` in a recipe. Their weights are random, so they produce nonsense:
    they exercise the pipeline, not quality.
    """
    if (family is None) == (not clip):
        raise click.UsageError("give exactly one of --family or --clip")
    if out.exists() and any(out.iterdir()) and not force:
        raise click.UsageError(f"{out} is not empty; pass --force to write into it anyway")
    from prefgen.models.tiny.families import build_tiny_clip, build_tiny_vlm

    if clip:
        build_tiny_clip(out, seed=seed)
        click.echo(f"tiny open_clip model -> {out}  (recipe: models.clip = {{model: tiny, path: {out.resolve()}}})")
        click.echo(RELATIVE_NOTE)
        return
    for name in FAMILIES if family == "all" else (family,):
        folder = out / name if family == "all" else out
        build_tiny_vlm(name, folder, seed=seed)
        click.echo(f"tiny {name} VLM -> {folder}  (recipe: models.vlm = {{path: {folder.resolve()}}})")
    click.echo(RELATIVE_NOTE)


@models.command()
@click.argument("model")
@click.option("--revision", help="Commit sha or tag of a Hub model (looked up in the local cache only).")
def check(model: str, revision: str | None) -> None:
    """Say whether prefgen supports MODEL (a local folder or a Hub id in the local cache), without loading weights.

    Reads the config, processor and chat template only, and prints the family, how images become tokens, the
    cache type and whether prefix reuse applies, the LoRA targets and the recipe entry, then one line per problem.
    Exits with 1 when the model is not supported.
    """
    from prefgen.models.check import check_model

    report = check_model(model, revision)
    for line in report.lines():
        click.echo(line)
    if not report.supported:
        raise SystemExit(1)
