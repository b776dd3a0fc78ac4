"""``prefgen train`` (one DPO run, or the build -> train rounds loop) and ``prefgen rounds``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from prefgen.cli.build import executor_options
from prefgen.cli.output import print_columns, write_rows
from prefgen.eval.rounds import kinds_help


@click.command()
@click.option("--data", "data", metavar="STORE[@VERSION]|hf://REPO@TAG", help="Pairs to train on (one run).")
@click.option("--model", "model", required=True, help="Model folder (or Hub id) to start from.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Training settings (YAML); default: the recipe's `train` section, else built-in defaults.",
)
@click.option("--rounds", type=click.IntRange(min=1), help="Run the build -> train loop this many rounds.")
@click.option("--recipe", type=click.Path(dir_okay=False, path_type=Path), help="Recipe each round builds with.")
@click.option(
    "--eval",
    "evals",
    multiple=True,
    metavar="KIND[:KEY=VALUE,...]",
    help=f"Evaluate the base model and every round's model (repeatable): {kinds_help()}. "
    "See README, Evaluating rounds.",
)
@click.option(
    "--eval-n", default=500, show_default=True, type=click.IntRange(min=1), help="Scenes to evaluate on (shapes)."
)
@click.option(
    "--eval-seed",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Which held-out shapes scenes: 0 for reported figures, another seed (1) to choose settings on.",
)
@click.option("--max-steps", type=click.IntRange(min=1), help="Override the config's max_steps.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a value of the rounds' recipe, e.g. stages.select_pairs.chosen_score=answers_oracle.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@executor_options
def train(**options) -> None:
    """DPO on a dataset version (trl, with SENA's ICA and mDPO terms), or the iterative rounds loop."""
    request = TrainRequest(**options)
    if request.rounds is None:
        _train_once(request)
    else:
        _train_rounds(request)


@dataclass(frozen=True)
class TrainRequest:
    """The command line of `prefgen train`, as given."""

    data: str | None
    model: str
    out: Path
    config_path: Path | None
    rounds: int | None
    recipe: Path | None
    evals: tuple[str, ...]
    eval_n: int
    eval_seed: int
    max_steps: int | None
    overrides: tuple[str, ...]
    quiet: bool
    executor: str
    address: str | None
    workers: int | None

    @property
    def settings(self) -> dict:
        return {"max_steps": self.max_steps} if self.max_steps else {}


def _train_once(request: TrainRequest) -> None:
    if request.data is None or request.recipe is not None:
        raise click.UsageError("give --data for one training run, or --rounds with --recipe for the loop")
    if request.executor != "local":
        raise click.UsageError("--executor applies to the builds of --rounds; one training run builds nothing")
    from prefgen.recipe.training import load_train_config
    from prefgen.train.run import train as train_once

    config = load_train_config(request.config_path, request.settings)
    lineage = train_once(request.data, request.model, request.out, config, quiet=request.quiet)
    if _main_process():
        rows, loss = lineage["data"].get("rows"), lineage["metrics"]["train_loss"]
        click.echo(f"trained {request.out}: {rows} pairs, loss {loss:.4f}")
        if not request.quiet and (request.out / "train.log").exists():  # what transformers and trl printed
            click.echo(f"log: {request.out / 'train.log'}", err=True)


def _train_rounds(request: TrainRequest) -> None:
    if request.recipe is None or request.data is not None:
        raise click.UsageError("--rounds needs --recipe (each round builds its own data), not --data")
    from prefgen.train.rounds import rounds_table, run_rounds

    run_rounds(_rounds_plan(request), on_round=lambda r, stage: click.echo(f"round {r}: {stage}", err=True))
    if _main_process():
        print_columns(*rounds_table(request.out))


def _rounds_plan(request: TrainRequest):
    """The rounds plan: the recipe with its overrides, the training settings (``--config``, else the recipe's
    ``train`` section, else defaults; ``--max-steps`` over either) and the evaluation asked for."""
    from prefgen.recipe import load_recipe
    from prefgen.recipe.training import load_train_config
    from prefgen.train.rounds import RoundsPlan

    recipe = load_recipe(request.recipe, request.overrides)
    if request.config_path or not recipe.train:
        config = load_train_config(request.config_path, request.settings)
    else:
        config = recipe.train.model_copy(update=request.settings)
    evaluate = judge = directions = None
    if request.evals:
        from prefgen.eval.benches import ground_truth_beside, pair_directions, pair_judge
        from prefgen.eval.rounds import Setting, round_evaluator

        setting = Setting(n=request.eval_n, seed=request.eval_seed, base=Path(request.model))
        evaluate = round_evaluator(request.evals, setting)
        truth = ground_truth_beside(request.recipe, recipe.source)
        judge = pair_judge(truth) if truth else None
        directions = pair_directions
    return RoundsPlan(
        recipe=request.recipe,
        base_model=Path(request.model),
        out=request.out,
        rounds=request.rounds,
        config=config,
        overrides=request.overrides,
        build_options={"executor": request.executor, "address": request.address, "workers": request.workers},
        evaluate=evaluate,
        judge_pairs=judge,
        directions=directions,
        quiet=request.quiet,
    )


@click.command("rounds")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--all", "every_metric", is_flag=True, help="Every recorded metric, not only the key ones.")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="PATTERN",
    help="Metrics to show, by name or pattern (repeatable): --metric 'qa.*' --metric pope.adversarial.f1.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]), default="table", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
def rounds_cmd(
    folders: tuple[Path, ...], every_metric: bool, metrics: tuple[str, ...], fmt: str, output: Path | None
) -> None:
    """The rounds of `prefgen train --rounds` runs: data version, pairs, loss, reward accuracy and eval metrics;
    several folders side by side (one row per run and round)."""
    from prefgen.train.rounds import format_metric, rounds_records

    header, rows = rounds_records(list(folders), every_metric, metrics)
    if fmt == "table" and output is None:
        print_columns(header, [[format_metric(value) for value in row] for row in rows])
    else:
        write_rows(header, rows, fmt, output)


def _main_process() -> bool:
    """False in the other processes of `torchrun` / `accelerate launch` (they train, the main one reports)."""
    from prefgen.train.run import is_main_process

    return is_main_process()
