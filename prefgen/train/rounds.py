"""The papers' iterative loop as one resumable command: for r = 1..N, build a dataset version with model r-1, train
model r on it, evaluate it if asked, and go on with model r.

Layout of the output folder (everything a round needs to be resumed or audited):

    DIR/data/                      the store; version r<r> was built by model r-1 (its manifest says so)
    DIR/round-<r>/model/           model r: weights, processor, metrics.jsonl, lineage.json (parent, data, eval)
    DIR/round-0.json               the base model's evaluation, when --eval is given

A round is done once its model's lineage.json exists and holds the evaluation asked for; a rerun skips done rounds,
continues an interrupted build from its finished shards and cached stages, and restarts an interrupted training.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from prefgen.core.errors import PrefgenError
from prefgen.engine.runner import BuildOptions, run_build
from prefgen.recipe.training import TrainConfig
from prefgen.store.folder import Store
from prefgen.train.run import LINEAGE, distributed_state, is_main_process, train

Evaluate = Callable[[Path], dict[str, Any]]


def run_rounds(
    recipe_path: Path,
    base_model: Path,
    out: Path,
    rounds: int,
    config: TrainConfig,
    evaluate: Evaluate | None = None,
    quiet: bool = False,
    on_round=None,
    overrides: tuple[str, ...] = (),
    judge_pairs: Callable[[str], dict[str, Any]] | None = None,
    build_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) ``rounds`` rounds; returns each round's lineage. ``on_round(r, stage)`` hears of progress;
    ``overrides`` (``KEY=VALUE``) change the recipe of every round's build; ``judge_pairs(STORE@VERSION)`` (the
    pairs' accuracy against ground truth, where the images have one) is kept with the evaluation as ``pairs``;
    ``build_options`` are more ``BuildOptions`` for every round's build (``executor="ray"``, ``address``...)."""
    out = Path(out)
    state = distributed_state()  # with several processes: builds and evaluations on the main process only
    main = is_main_process()
    if main:
        out.mkdir(parents=True, exist_ok=True)
    notify = on_round if on_round is not None and main else (lambda r, stage: None)
    if main and evaluate is not None and not (out / "round-0.json").exists():
        notify(0, "eval")
        _write_json(out / "round-0.json", {"round": 0, "model": str(base_model), "eval": evaluate(Path(base_model))})
    model, results = Path(base_model), []
    for r in range(1, rounds + 1):
        model_dir = out / f"round-{r}" / "model"
        state.wait_for_everyone()
        lineage = _read_json(model_dir / LINEAGE)
        version, store_path = f"r{r}", out / "data"
        if lineage is None:
            seconds = {}
            if main and not (store_path.exists() and version in Store(store_path).versions()):
                notify(r, "build")
                started = time.monotonic()
                run_build(
                    Path(recipe_path),
                    BuildOptions(
                        out=store_path,
                        version=version,
                        round=r,
                        vlm_path=model,
                        message=f"round {r}: built with {model}",
                        quiet=quiet,
                        overrides=tuple(overrides),
                        **(build_options or {}),
                    ),
                )
                seconds["build"] = round(time.monotonic() - started, 1)
            state.wait_for_everyone()
            notify(r, "train")
            started = time.monotonic()
            lineage = train(
                f"{store_path}@{version}",
                model,
                model_dir,
                config,
                quiet=quiet,
                extra_lineage={"round": r, "recipe": str(Path(recipe_path).resolve())},
            )
            seconds["train"] = round(time.monotonic() - started, 1)
            lineage["seconds"] = seconds  # wall time of this round's steps in this run (a resumed step is absent)
            if main:
                _write_json(model_dir / LINEAGE, lineage)
        if main and evaluate is not None and not lineage.get("eval"):
            notify(r, "eval")
            started = time.monotonic()
            lineage["eval"] = evaluate(model_dir)
            if judge_pairs is not None:
                lineage["eval"]["pairs"] = judge_pairs(f"{store_path}@{version}")
            lineage.setdefault("seconds", {})["eval"] = round(time.monotonic() - started, 1)
            _write_json(model_dir / LINEAGE, lineage)
        results.append(lineage)
        model = model_dir
    state.wait_for_everyone()
    return results


# The evaluation columns `prefgen rounds` shows by default (when present); `--all` shows every number recorded.
KEY_METRICS = (
    "chair.chair_s",
    "chair.chair_i",
    "chair.recall",
    "pope.random.f1",
    "pope.popular.f1",
    "pope.adversarial.f1",
    "qa.all",
    "pairs.accuracy",
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
    runs = [(Path(folder), _round_entries(Path(folder))) for folder in folders]
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


def _round_entries(out: Path) -> list[tuple[int, dict]]:
    """(round, lineage) of every finished round of a rounds folder, the base model's evaluation as round 0."""
    if not out.is_dir():
        raise PrefgenError(f"{out} is not a rounds folder")
    entries = []
    base = _read_json(out / "round-0.json")
    if base is not None:
        entries.append((0, {"eval": base.get("eval", {})}))
    for folder in sorted(out.glob("round-*/model"), key=lambda p: int(p.parent.name.split("-")[1])):
        lineage = _read_json(folder / LINEAGE)
        if lineage is not None:
            entries.append((int(folder.parent.name.split("-")[1]), lineage))
    if not entries:
        raise PrefgenError(f"{out} holds no finished round")
    return entries


def flatten_metrics(values: dict, prefix: str = "") -> dict[str, Any]:
    """Nested metrics as one level of dotted names (``pope.random.f1``), numbers only."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


def format_metric(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
