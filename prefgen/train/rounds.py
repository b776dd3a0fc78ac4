"""The papers' iterative loop as one resumable command: for r = 1..N, build a dataset version with model r-1, train
model r on it, evaluate it if asked, and go on with model r.

The output folder's layout is ``prefgen.train.lineage``'s (the one reader and writer of it). A round is done once its
model's lineage exists and holds the evaluation asked for; a rerun skips done rounds, continues an interrupted build
from its finished shards and cached stages, and restarts an interrupted training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from prefgen.core.errors import PrefgenError
from prefgen.engine.logs import capture
from prefgen.engine.runner import BuildOptions, run_build
from prefgen.recipe.training import TrainConfig
from prefgen.store.folder import Store
from prefgen.train.lineage import RunFolder, flatten_metrics
from prefgen.train.run import distributed_state, is_main_process, train

Evaluate = Callable[[Path], dict[str, Any]]
JudgePairs = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class RoundsPlan:
    """Everything a rounds run needs, decided before it starts.

    ``overrides`` (``KEY=VALUE``) change the recipe of every round's build; ``build_options`` are more
    ``BuildOptions`` for each build (``executor="ray"``, ``address``...); ``evaluate(model_dir)`` measures the base
    model and each round's; ``judge_pairs(STORE@VERSION)`` (the pairs' accuracy against ground truth, where the
    images have one) is kept with the evaluation as ``pairs``, and ``directions(STORE@VERSION)`` (label-free: do the
    rejected answers' numbers err one way?) as ``directions``."""

    recipe: Path
    base_model: Path
    out: Path
    rounds: int
    config: TrainConfig
    overrides: tuple[str, ...] = ()
    build_options: dict[str, Any] = field(default_factory=dict)
    evaluate: Evaluate | None = None
    judge_pairs: JudgePairs | None = None
    directions: JudgePairs | None = None  # label-free: the direction bias of the pairs' rejected numbers
    quiet: bool = False


def run_rounds(plan: RoundsPlan, on_round: Callable[[int, str], None] | None = None) -> list[dict[str, Any]]:
    """Run (or resume) the plan's rounds; returns each round's lineage. ``on_round(r, stage)`` hears of progress.
    A round whose gate verdict is "stop" is the last: the loop's model is then the round before it."""
    loop = _Loop(plan, on_round)
    loop.evaluate_base()
    model, results = Path(plan.base_model), []
    for r in range(1, plan.rounds + 1):
        loop.state.wait_for_everyone()
        lineage = loop.folder.lineage(r) or loop.build_and_train(r, model)
        results.append(loop.evaluate_round(r, lineage))
        if gate_failed(results[-1]):  # the round drifted past the gate's limits: keep model r - 1, stop here
            loop.notify(r, f"gate: stop (the loop keeps the model of round {r - 1})")
            break
        model = loop.folder.model_dir(r)
    loop.state.wait_for_everyone()
    return results


def gate_failed(lineage: dict[str, Any]) -> bool:
    """Whether a round's evaluation holds the gate's verdict "stop" (``--eval gate:...`` with ``max_*`` limits:
    ``prefgen.eval.gate``); with no verdict recorded the loop goes on."""
    return lineage.get("eval", {}).get("gate", {}).get("verdict") == 0


class _Loop:
    """The steps of a round; with several processes, builds and evaluations run on the main one only."""

    def __init__(self, plan: RoundsPlan, on_round: Callable[[int, str], None] | None):
        self.plan, self.folder = plan, RunFolder(plan.out)
        self.state = distributed_state()
        self.main = is_main_process()
        self.notify = on_round if on_round is not None and self.main else (lambda r, stage: None)
        if self.main:
            Path(plan.out).mkdir(parents=True, exist_ok=True)

    def evaluate_base(self) -> None:
        if self.main and self.plan.evaluate is not None and self.folder.base() is None:
            self.notify(0, "eval")
            self.folder.write_base(self.plan.base_model, self._evaluate(0, Path(self.plan.base_model)))

    def build_and_train(self, r: int, model: Path) -> dict[str, Any]:
        seconds = {}
        if self.main and not self._built(r):
            self.notify(r, "build")
            seconds["build"] = _timed(lambda: self._build(r, model))
        self.state.wait_for_everyone()
        self.notify(r, "train")
        started = time.monotonic()
        lineage = train(
            self.folder.data_ref(r),
            model,
            self.folder.model_dir(r),
            self.plan.config,
            quiet=self.plan.quiet,
            extra_lineage={"round": r, "recipe": str(Path(self.plan.recipe).resolve())},
        )
        seconds["train"] = round(time.monotonic() - started, 1)
        lineage["seconds"] = seconds  # wall time of this round's steps in this run (a resumed step is absent)
        if self.main:
            self.folder.write_lineage(r, lineage)
        return lineage

    def evaluate_round(self, r: int, lineage: dict[str, Any]) -> dict[str, Any]:
        if not self.main or self.plan.evaluate is None or lineage.get("eval"):
            return lineage
        self.notify(r, "eval")
        started = time.monotonic()
        lineage["eval"] = self._evaluate(r, self.folder.model_dir(r))
        if self.plan.judge_pairs is not None:
            lineage["eval"]["pairs"] = self.plan.judge_pairs(self.folder.data_ref(r))
        if self.plan.directions is not None:
            lineage["eval"]["directions"] = self.plan.directions(self.folder.data_ref(r))
        lineage.setdefault("seconds", {})["eval"] = round(time.monotonic() - started, 1)
        self.folder.write_lineage(r, lineage)
        return lineage

    def _evaluate(self, r: int, model: Path) -> dict[str, Any]:
        """The evaluation of model ``r``, with what the libraries print meanwhile (transformers' "Loading weights"
        bars as each bench loads the model) in the run's log, as a build's and a training's are in theirs."""
        with capture(self.folder.eval_log(r)):
            return self.plan.evaluate(model)

    def _built(self, r: int) -> bool:
        store = self.folder.store_path
        return store.exists() and self.folder.version(r) in Store(store).versions()

    def _build(self, r: int, model: Path) -> None:
        options = BuildOptions(
            out=self.folder.store_path,
            version=self.folder.version(r),
            round=r,
            vlm_path=model,
            message=f"round {r}: built with {model}",
            quiet=self.plan.quiet,
            overrides=tuple(self.plan.overrides),
            **self.plan.build_options,
        )
        run_build(Path(self.plan.recipe), options)


def _timed(step: Callable[[], None]) -> float:
    started = time.monotonic()
    step()
    return round(time.monotonic() - started, 1)


# The evaluation columns `prefgen rounds` shows by default (when present); `--all` shows every number recorded.
KEY_METRICS = (
    "chair.chair_s",
    "chair.chair_i",
    "chair.recall",
    "pope.random.f1",
    "pope.popular.f1",
    "pope.adversarial.f1",
    "pope.mean_f1",
    "qa.all",
    "pairs.accuracy",
    "directions.bias",
    "gate.repeated_words",
    "gate.repeated_sentences",
    "gate.length_drift",
    "gate.base_logprob_drop",
    "gate.verdict",
)


def rounds_table(out: Path, every_metric: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows of text for `prefgen rounds DIR` as a terminal table (see ``rounds_records``)."""
    header, rows = rounds_records([out], every_metric)
    return header, [[format_metric(value) for value in row] for row in rows]


def rounds_records(
    folders: list[Path], every_metric: bool = False, metrics: Sequence[str] = ()
) -> tuple[list[str], list[list]]:
    """Header and rows for `prefgen rounds DIR [DIR ...]`, one row per run and round: the run (with several
    folders), round, data version, pairs, loss, reward accuracy, wall minutes (build + train + evaluation, where
    recorded), then the evaluation metrics: those matching the
    ``metrics`` patterns (``fnmatch``: ``qa.*``, ``pope.adversarial.f1``) in the patterns' order, else
    ``KEY_METRICS`` where any run has any of them, else all; ``every_metric``: all. Values are numbers, or None
    where not measured."""
    runs = [(Path(folder), [(r.number, r.lineage) for r in RunFolder(folder).rounds()]) for folder in folders]
    names = sorted({k for _, entries in runs for _, lin in entries for k in flatten_metrics(lin.get("eval", {}))})
    if metrics:
        chosen = [name for pattern in metrics for name in names if fnmatch(name, pattern)]
        if not chosen:
            raise PrefgenError(
                f"no recorded metric matches {', '.join(metrics)}; the runs record: {', '.join(names) or 'none'}"
            )
        names = list(dict.fromkeys(chosen))
    elif not every_metric and any(name in KEY_METRICS for name in names):
        names = [name for name in KEY_METRICS if name in names]
    several = len(runs) > 1
    header = [*(["run"] if several else []), "round", "data", "pairs", "loss", "reward acc", "minutes", *names]
    rows = []
    for folder, entries in runs:
        for r, lineage in entries:
            data, metrics, evals = (
                lineage.get("data", {}),
                lineage.get("metrics", {}),
                flatten_metrics(lineage.get("eval", {})),
            )
            seconds = lineage.get("seconds")
            rows.append(
                [
                    *([str(folder)] if several else []),
                    r,
                    data.get("version", "-") if r else "base",
                    data.get("rows"),
                    metrics.get("train_loss"),
                    metrics.get("rewards/accuracies"),
                    round(sum(seconds.values()) / 60, 1) if seconds else None,
                    *[evals.get(name) for name in names],
                ]
            )
    return header, rows


def format_metric(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
