"""``prefgen validate``, ``schema``, ``stages`` and ``build``: recipes and what they make."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("recipes", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--recipe-only",
    is_flag=True,
    help="Check the recipes alone, not whether this machine has their paths, devices and models "
    "(for recipes written for another machine).",
)
def validate(recipes: tuple[Path, ...], recipe_only: bool) -> None:
    """Check recipes and report every problem, with its YAML path and line; then (unless --recipe-only) whether
    this machine has what they need: source and model paths, devices, and models in the local caches when offline.
    No model is loaded."""
    from prefgen.recipe import check_recipe, load_recipe
    from prefgen.recipe.check import check_here
    from prefgen.recipe.readiness import recipe_notes

    failed = 0
    for path in recipes:
        problems = check_recipe(path) if recipe_only else check_here(path)
        if problems:
            failed += 1
            for problem in problems:
                click.echo(
                    f"{path}:{problem.line or 0}: {problem.path + ': ' if problem.path else ''}{problem.message}",
                    err=True,
                )
            continue
        click.echo(f"{path}: ok")
        for note in recipe_notes(load_recipe(path)):
            click.echo(f"{path}: note: {note}", err=True)
    if failed:
        click.echo(f"{failed} of {len(recipes)} recipe(s) invalid", err=True)
        sys.exit(1)


@click.command()
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
    help="Folder for the JSON Schema files.",
)
def schema(out: Path) -> None:
    """Write the JSON Schemas of recipes, output rows and manifests."""
    from prefgen.cli.schemas import write_schemas

    for path in write_schemas(out):
        click.echo(str(path))


@click.command()
@click.argument("name", required=False)
def stages(name: str | None) -> None:
    """List the stages a recipe can use, or show one with its columns and params."""
    from prefgen.recipe.catalogue import STAGES
    from prefgen.stages.describe import describe_stage, stage_summary

    if name is None:
        for cls in STAGES.values():
            click.echo(stage_summary(cls))
        return
    if name not in STAGES:
        import difflib

        hint = difflib.get_close_matches(name, STAGES, n=1)
        raise click.UsageError(f"unknown stage {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    click.echo(describe_stage(STAGES[name]))


def executor_options(fn):
    """``--executor``, ``--address`` and ``--workers``: where a build's stages run (shared by build and train)."""
    fn = click.option(
        "--workers",
        type=click.IntRange(min=1),
        help="Ray: workers per stage unless its `resources` say (default: the cluster's CPUs).",
    )(fn)
    fn = click.option(
        "--address",
        help="Ray: the cluster to join (`auto`: the one running here); none starts a local cluster for this build.",
    )(fn)
    return click.option(
        "--executor",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="Run the stages in this process, or on a Ray cluster (same rows either way).",
    )(fn)


@click.command()
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--plan", is_flag=True, help="Validate, read the source listing and print what would run; write nothing."
)
@click.option("--preview", type=click.IntRange(min=1), help="Run this many images, print the pairs, publish nothing.")
@click.option("--limit", type=click.IntRange(min=1), help="Read at most this many source images.")
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), help="Store folder (overrides the recipe)."
)
@click.option("--version", "version", help="Version name (default: the recipe's, else the next vN).")
@click.option("-m", "--message", help="Version message (default: the recipe's).")
@click.option("--push", "push_repo", help="Push the new version to this Hub dataset repo.")
@click.option("--fresh", is_flag=True, help="Discard an unfinished draft instead of continuing it.")
@click.option(
    "--shard-size",
    default=64,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images per shard: the unit of resume and of caching.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Rows per stage call (does not change the results) [16; a whole shard for VLM stages on vLLM].",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--log-json", type=click.Path(dir_okay=False, path_type=Path), help="Append JSON-lines events here.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a recipe value, e.g. stages.select_pairs.chosen_score=answers_oracle (repeatable).",
)
@executor_options
def build(
    recipe: Path,
    plan: bool,
    preview: int | None,
    limit: int | None,
    out: Path | None,
    version: str | None,
    message: str | None,
    push_repo: str | None,
    fresh: bool,
    shard_size: int,
    batch_size: int | None,
    quiet: bool,
    log_json: Path | None,
    overrides: tuple[str, ...],
    executor: str,
    address: str | None,
    workers: int | None,
) -> None:
    """Build a new dataset version from a recipe (resumes an interrupted build of the same recipe)."""
    if plan:
        from prefgen.engine.plan import make_plan

        found = make_plan(recipe, overrides)
        click.echo(found.render())
        if found.problems:
            sys.exit(1)
        return
    from prefgen.engine.runner import BuildOptions, run_build

    options = BuildOptions(
        out=out,
        version=version,
        message=message,
        limit=limit,
        preview=preview,
        fresh=fresh,
        push=push_repo,
        quiet=quiet,
        log_json=log_json,
        shard_size=shard_size,
        batch_size=batch_size,
        overrides=overrides,
        executor=executor,
        address=address,
        workers=workers,
    )
    result = run_build(recipe, options)
    if result.log is not None and not quiet:  # last, after whatever the command prints
        click.get_current_context().call_on_close(lambda: click.echo(f"log: {result.log}", err=True))
    drops = ", ".join(f"{reason} {n}" for reason, n in result.drops.most_common()) or "none"
    for note in result.notes:
        click.echo(note, err=True)
    if result.manifest is None:
        from prefgen.cli.show import render_pairs

        click.echo(render_pairs(result.rows), nl=False)
        click.echo(f"preview: {len(result.rows)} pair(s), nothing published; dropped: {drops}")
        return
    m = result.manifest
    if result.up_to_date:
        click.echo(f"up to date: {m.version} in {result.store} already holds this build ({m.rows} pairs)")
        return
    click.echo(f"published {m.version} in {result.store}: {m.rows} pairs; dropped: {drops}")
    if result.push_summary:
        click.echo(result.push_summary)
