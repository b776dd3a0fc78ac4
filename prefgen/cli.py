"""The ``prefgen`` command line: a thin layer over the library.

Start-up stays light: this module imports only click, and each command imports what it needs when it runs, so
``prefgen --help``, ``versions`` and ``query`` never load torch or transformers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from prefgen import __version__
from prefgen.output import print_columns, write_rows


class _Group(click.Group):
    """Turns prefgen's own errors (and unexpected ones) into one line on stderr; ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # the reader went away (`prefgen query ... | head`): not an error of ours
            sys.stderr.close()
            ctx.exit(0)
        except Exception as exc:
            if ctx.meta.get("prefgen.debug"):
                raise
            from prefgen.core.errors import PrefgenError

            if isinstance(exc, PrefgenError):
                click.echo(f"error: {exc}", err=True)
            else:
                click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"auto_envvar_prefix": "PREFGEN", "help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.version_option(__version__, prog_name="prefgen")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Build versioned preference datasets for vision-language models from unannotated images, query them with
    DuckDB, push them to the Hub, and train on them."""
    ctx.meta["prefgen.debug"] = debug


# ---------------------------------------------------------------------------------------------------- recipes


@cli.command()
@click.argument("recipes", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def validate(recipes: tuple[Path, ...]) -> None:
    """Check recipes and report every problem, with its YAML path and line."""
    from prefgen.recipe import check_recipe

    failed = 0
    for path in recipes:
        problems = check_recipe(path)
        if problems:
            failed += 1
            for problem in problems:
                click.echo(f"{path}:{problem.line or 0}: {problem.path + ': ' if problem.path else ''}"
                           f"{problem.message}", err=True)
        else:
            click.echo(f"{path}: ok")
    if failed:
        click.echo(f"{failed} of {len(recipes)} recipe(s) invalid", err=True)
        sys.exit(1)


@cli.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("schemas"),
              show_default=True, help="Folder for the JSON Schema files.")
def schema(out: Path) -> None:
    """Write the JSON Schemas of recipes, output rows and manifests."""
    from prefgen.schemas import write_schemas

    for path in write_schemas(out):
        click.echo(str(path))


@cli.command()
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
    fn = click.option("--workers", type=click.IntRange(min=1),
                      help="Ray: workers per stage unless its `resources` say (default: the cluster's CPUs).")(fn)
    fn = click.option("--address", help="Ray: the cluster to join (`auto`: the one running here); none starts a "
                      "local cluster for this build.")(fn)
    return click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                        help="Run the stages in this process, or on a Ray cluster (same rows either way).")(fn)


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plan", is_flag=True, help="Validate, read the source listing and print what would run; write nothing.")
@click.option("--preview", type=click.IntRange(min=1), help="Run this many images, print the pairs, publish nothing.")
@click.option("--limit", type=click.IntRange(min=1), help="Read at most this many source images.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), help="Store folder (overrides the recipe).")
@click.option("--version", "version", help="Version name (default: the recipe's, else the next vN).")
@click.option("-m", "--message", help="Version message (default: the recipe's).")
@click.option("--push", "push_repo", help="Push the new version to this Hub dataset repo.")
@click.option("--fresh", is_flag=True, help="Discard an unfinished draft instead of continuing it.")
@click.option("--shard-size", default=64, show_default=True, type=click.IntRange(min=1),
              help="Images per shard: the unit of resume and of caching.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1),
              help="Rows per stage call (does not change the results).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--log-json", type=click.Path(dir_okay=False, path_type=Path), help="Append JSON-lines events here.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Change a recipe value, e.g. stages.select_pairs.chosen_score=answers_oracle (repeatable).")
@executor_options
def build(recipe: Path, plan: bool, preview: int | None, limit: int | None, out: Path | None, version: str | None,
          message: str | None, push_repo: str | None, fresh: bool, shard_size: int, batch_size: int, quiet: bool,
          log_json: Path | None, overrides: tuple[str, ...], executor: str, address: str | None,
          workers: int | None) -> None:
    """Build a new dataset version from a recipe (resumes an interrupted build of the same recipe)."""
    if plan:
        from prefgen.engine.plan import make_plan

        click.echo(make_plan(recipe, overrides).render())
        return
    from prefgen.engine.runner import BuildOptions, run_build

    options = BuildOptions(out=out, version=version, message=message, limit=limit, preview=preview, fresh=fresh,
                           push=push_repo, quiet=quiet, log_json=log_json, shard_size=shard_size,
                           batch_size=batch_size, overrides=overrides, executor=executor, address=address,
                           workers=workers)
    result = run_build(recipe, options)
    drops = ", ".join(f"{reason} {n}" for reason, n in result.drops.most_common()) or "none"
    if result.manifest is None:
        from prefgen.show import render_pairs

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


# ---------------------------------------------------------------------------------------------------- stores


@cli.command()
@click.argument("store", type=click.Path(path_type=Path))
def versions(store: Path) -> None:
    """List a store's versions: name, rows, parent, creation time and message."""
    from prefgen.store import Store

    manifests = Store(store).manifests()
    if not manifests:
        click.echo(f"{store}: no versions yet")
        return
    rows = [(m.version, str(m.rows), m.parent or "-", f"{m.created_at:%Y-%m-%d %H:%M:%S}", m.origin, m.message)
            for m in manifests]
    print_columns(("version", "rows", "parent", "created (UTC)", "origin", "message"), rows)


@cli.command()
@click.argument("ref", metavar="STORE[@VERSION]")
@click.option("-n", "limit", default=5, show_default=True, type=click.IntRange(min=1), help="Pairs to show.")
def show(ref: str, limit: int) -> None:
    """Show a version's summary and a sample of its pairs (text only)."""
    from prefgen.query import parse_ref
    from prefgen.show import render_version

    store, version = parse_ref(ref)
    render_version(store, version, limit)


@cli.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.option("--images", is_flag=True, help="Keep image bytes in the views (left out by default).")
def query(store: Path, sql: str, fmt: str, output: Path | None, images: bool) -> None:
    """Run read-only SQL over a store. Views: `pairs` (latest version), one per version (quote names with dots,
    e.g. "v1.2"), and `versions`."""
    from prefgen.core.errors import PrefgenError
    from prefgen.store import Store

    if fmt == "parquet":
        if output is None:
            raise PrefgenError("--format parquet needs -o FILE")
        import pyarrow.parquet as pq

        from prefgen.query import run_query

        pq.write_table(run_query(Store(store), sql, images=images), output)
        return
    from prefgen.query import fetch_rows

    columns, rows = fetch_rows(Store(store), sql, images=images)
    write_rows(columns, rows, fmt, output)


@cli.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--sql", required=True, help="One SELECT over the store's views; its rows become the new version.")
@click.option("-m", "--message", required=True, help="What the new version is.")
@click.option("--version", "version", help="Name of the new version (default: the next vN).")
def derive(store: Path, sql: str, message: str, version: str | None) -> None:
    """Publish the rows of a SQL query as a new version (parent recorded, images kept)."""
    from prefgen.derive import derive as run_derive
    from prefgen.store import Store

    manifest = run_derive(Store(store), sql, message=message, version=version)
    click.echo(f"published {manifest.version}: {manifest.rows} rows (parent {manifest.parent})")


@cli.command()
@click.argument("ref", metavar="STORE[@VERSION]")
@click.option("--format", "fmt", type=click.Choice(["llava", "seva", "llamafactory", "jsonl"]), required=True,
              help="llava: CSR's LLaVA json; seva: SeVa/SENA json; llamafactory: sharegpt ranking data; "
                   "jsonl: every column, one row per line.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write (created; must be empty if it exists).")
def export(ref: str, fmt: str, out: Path) -> None:
    """Export a version for other trainers, with its images written as files beside the data."""
    from prefgen.export import export_version
    from prefgen.query import parse_ref

    store, version = parse_ref(ref)
    result = export_version(store, version, fmt, out)
    click.echo(f"exported {result.rows} rows of {result.version} as {fmt} to {out}")


@cli.command()
@click.argument("targets", nargs=-1, required=True, metavar="STORE[@VERSION] | RUNS_DIR...")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="HTML file to write (self-contained: it opens offline, fetches nothing).")
@click.option("--compare", nargs=2, metavar="V1 V2", help="Compare two versions of the store.")
def report(targets: tuple[str, ...], out: Path, compare: tuple[str, str] | None) -> None:
    """HTML report of a version (summary, score histograms, a gallery of pairs), of two versions (--compare), or
    of `prefgen train --rounds` folders (metrics per round, several runs overlaid, lineage)."""
    from prefgen.report import write_report

    click.echo(write_report(list(targets), out, compare=compare).summary())


# ---------------------------------------------------------------------------------------------------- the Hub


@cli.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--repo", required=True, help="Hub dataset repo id, `user/name`.")
@click.option("--version", "version", help="Version to push and tag (default: the latest).")
@click.option("--private", is_flag=True, help="Create the repo as private if it does not exist.")
def push(store: Path, repo: str, version: str | None, private: bool) -> None:
    """Push a store's data, card and manifests to the Hub in one commit, and tag the version."""
    from prefgen.hub import push as hub_push
    from prefgen.store import Store

    result = hub_push(Store(store), repo, version=version, private=private)
    click.echo(result.summary())


@cli.command()
@click.argument("ref", metavar="REPO[@TAG]")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def pull(ref: str, dest: Path) -> None:
    """Download a Hub dataset repo (at a tag) as a local store."""
    from prefgen.hub import pull as hub_pull

    repo, _, revision = ref.partition("@")
    store = hub_pull(repo, dest, revision=revision or None)
    click.echo(f"pulled {repo}{'@' + revision if revision else ''} to {store.root} "
               f"(versions: {', '.join(store.versions()) or 'none'})")


# ---------------------------------------------------------------------------------------------------- training


@cli.command()
@click.option("--data", "data", metavar="STORE[@VERSION]|hf://REPO@TAG", help="Pairs to train on (one run).")
@click.option("--model", "model", required=True, help="Model folder (or Hub id) to start from.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Training settings (YAML); default: the recipe's `train` section, else built-in defaults.")
@click.option("--rounds", type=click.IntRange(min=1), help="Run the build -> train loop this many rounds.")
@click.option("--recipe", type=click.Path(dir_okay=False, path_type=Path), help="Recipe each round builds with.")
@click.option("--eval", "bench", type=click.Choice(["shapes-chair", "shapes-pope", "shapes-qa", "shapes"]),
              help="Evaluate the base model and every round's model on the shapes world (shapes: CHAIR, POPE and "
              "QA accuracy per kind of question).")
@click.option("--eval-n", default=500, show_default=True, type=click.IntRange(min=1), help="Scenes to evaluate on.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Override the config's max_steps.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Change a value of the rounds' recipe, e.g. stages.select_pairs.chosen_score=answers_oracle.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@executor_options
def train(data: str | None, model: str, out: Path, config_path: Path | None, rounds: int | None, recipe: Path | None,
          bench: str | None, eval_n: int, max_steps: int | None, overrides: tuple[str, ...], quiet: bool,
          executor: str, address: str | None, workers: int | None) -> None:
    """DPO on a dataset version (trl, with SENA's ICA and mDPO terms), or the iterative rounds loop."""
    from prefgen.recipe.train import load_train_config

    settings = {"max_steps": max_steps} if max_steps else {}
    if rounds is None:
        if data is None or recipe is not None:
            raise click.UsageError("give --data for one training run, or --rounds with --recipe for the loop")
        if executor != "local":
            raise click.UsageError("--executor applies to the builds of --rounds; one training run builds nothing")
        from prefgen.train.run import train as train_once

        lineage = train_once(data, model, out, load_train_config(config_path, settings), quiet=quiet)
        if _main_process():
            click.echo(f"trained {out}: {lineage['data'].get('rows')} pairs, "
                       f"loss {lineage['metrics']['train_loss']:.4f}")
        return
    if recipe is None or data is not None:
        raise click.UsageError("--rounds needs --recipe (each round builds its own data), not --data")
    from prefgen.recipe import load_recipe
    from prefgen.train.rounds import rounds_table, run_rounds

    loaded = load_recipe(recipe, overrides)
    section = loaded.train
    config = load_train_config(config_path, settings) if config_path or not section else \
        section.model_copy(update=settings)
    evaluate = judge = None
    if bench:
        from prefgen.shapes.bench import ground_truth_beside, model_evaluator, pair_judge

        evaluate = model_evaluator(bench, n=eval_n)
        truth = ground_truth_beside(recipe, loaded.source)
        judge = pair_judge(truth) if truth else None
    run_rounds(recipe, Path(model), out, rounds, config, evaluate=evaluate, quiet=quiet, overrides=overrides,
               judge_pairs=judge, build_options={"executor": executor, "address": address, "workers": workers}, on_round=lambda r, stage: click.echo(f"round {r}: {stage}", err=True))
    if _main_process():
        print_columns(*rounds_table(out))


@cli.command("rounds")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--all", "every_metric", is_flag=True, help="Every recorded metric, not only the key ones.")
@click.option("--metric", "metrics", multiple=True, metavar="PATTERN",
              help="Metrics to show, by name or pattern (repeatable): --metric 'qa.*' --metric pope.adversarial.f1.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]), default="table",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
def rounds_cmd(folders: tuple[Path, ...], every_metric: bool, metrics: tuple[str, ...], fmt: str,
               output: Path | None) -> None:
    """The rounds of `prefgen train --rounds` runs: data version, pairs, loss, reward accuracy and eval metrics;
    several folders side by side (one row per run and round)."""
    from prefgen.train.rounds import format_metric, rounds_records

    header, rows = rounds_records(list(folders), every_metric, metrics)
    if fmt == "table" and output is None:
        print_columns(header, [[format_metric(value) for value in row] for row in rows])
    else:
        write_rows(header, rows, fmt, output)


# ---------------------------------------------------------------------------------------------------- helpers


def _main_process() -> bool:
    """False in the other processes of `torchrun` / `accelerate launch` (they train, the main one reports)."""
    from prefgen.train.run import is_main_process

    return is_main_process()


def _register_groups() -> None:
    from prefgen.engine.cache_cli import cache  # these import click and small tables, nothing heavy
    from prefgen.models.cli import models
    from prefgen.shapes.cli import eval_command, shapes

    cli.add_command(cache)
    cli.add_command(models)
    cli.add_command(shapes)
    cli.add_command(eval_command)


_register_groups()


def main() -> None:
    cli(prog_name="prefgen")


if __name__ == "__main__":
    main()
