"""The report of one or several `prefgen train --rounds` folders: every evaluation metric round by round (one line
per run), the pairs' verdicts against ground truth, DPO's reward accuracy and margins, and the lineage
model -> data version -> model.

A rounds folder holds ``round-0.json`` (the base model's evaluation), ``round-<r>/model/lineage.json`` (parent model,
data version, training metrics, evaluation) and ``metrics.jsonl`` (trl's log per step) beside it, and the store
``data/`` whose version ``r<r>`` round r trained on. Only finished rounds (those with a lineage) are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefgen.core.errors import PrefgenError, StoreError
from prefgen.report.charts import PALETTE, line_svg, stacked_svg
from prefgen.store.folder import Store
from prefgen.train.lineage import LINEAGE, RunFolder, flatten_metrics, is_run_folder

# Chart sections: (title, prefix of the flattened metric names); what matches none goes to "Other".
SECTIONS = (
    ("Hallucination (CHAIR)", "eval.chair."),
    ("POPE", "eval.pope."),
    ("Pairs judged by ground truth", "eval.pairs."),
    ("DPO training", "train."),
    ("Data", "data."),
)
# Counts of what was evaluated, not results: in the table, not charted (verdict counts get their own stacked bars).
NOT_CHARTED = ("captions", "questions", "missing", "pairs", "better", "tie", "worse", "steps")
# Charted first in their section, in this order; the rest follow by name.
FIRST = (
    "eval.chair.chair_s",
    "eval.chair.chair_i",
    "eval.chair.recall",
    "eval.pairs.accuracy",
    "train.train_loss",
    "train.rewards/accuracies",
    "train.rewards/margins",
)
TITLES = {"data.rows": "pairs in the round's data"}
VERDICTS = (("better", PALETTE[0]), ("tie", "#bbbbbb"), ("worse", PALETTE[1]))
STEP_METRICS = ("rewards/accuracies", "rewards/margins", "loss")
# Metrics that cannot be negative (by the last part of their name): their axis starts at 0. Rates, counts, losses
# (DPO's and its added terms are -log of a probability); reward margins and log-probs can be negative.
NOT_NEGATIVE = ("chair_s", "chair_i", "recall", "precision", "f1", "mean_f1", "accuracy", "accuracies", "yes_ratio")


@dataclass
class Round:
    number: int
    values: dict[str, float]  # flattened: eval.chair.chair_s, train.rewards/accuracies, data.rows ...
    lineage: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)  # metrics.jsonl entries


@dataclass
class Run:
    path: Path
    name: str
    rounds: list[Round]
    versions: dict[str, Any]  # data version -> manifest (when the store is there)


def is_rounds_folder(path: Path) -> bool:
    """Training output the rounds report can show: a rounds folder, or a single `prefgen train --data` run."""
    return is_run_folder(path)


def read_run(path: Path, name: str) -> Run:
    folder = RunFolder(path)
    if not folder.exists():
        raise PrefgenError(f"{path} is not a rounds folder (no round-0.json or round-*/model/{LINEAGE})")
    rounds = []
    for found in folder.rounds(with_steps=True):
        lineage = found.lineage
        values = flatten_metrics(
            {
                "eval": found.eval,
                "train": lineage.get("metrics") or {},
                "data": {"rows": (lineage.get("data") or {}).get("rows")},
            }
        )
        rounds.append(Round(found.number, values, lineage, found.steps))
    return Run(path, name, rounds, _versions(folder, rounds))


def _versions(folder: RunFolder, rounds: list[Round]) -> dict[str, Any]:
    """Manifests of the data versions: the rounds folder's own store, or the store a single run trained on."""
    where = folder.store_path
    if folder.single_run and rounds:
        where = Path((rounds[-1].lineage.get("data") or {}).get("store") or where)
    try:
        return {m.version: m for m in Store(where).manifests()}
    except StoreError:
        return {}


def settings(run: Run) -> list[tuple[str, Any]]:
    """The training settings of the run's first trained round (a rounds loop trains every round with the same)."""
    trained = next((r for r in run.rounds if r.number > 0), None)
    config = (trained.lineage.get("config") or {}) if trained else {}
    flat = _flatten(config)
    return [(key, value) for key, value in sorted(flat.items()) if value is not None]


def _flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
    return flat


def rounds_context(paths: list[Path]) -> dict[str, Any]:
    names = _names(paths)
    runs = [read_run(path, name) for path, name in zip(paths, names)]
    colours = {run.name: PALETTE[i % len(PALETTE)] for i, run in enumerate(runs)}
    metrics = sorted(
        {k for run in runs for r in run.rounds for k in r.values},
        key=lambda k: (FIRST.index(k) if k in FIRST else len(FIRST), k),
    )
    sections: dict[str, list] = {title: [] for title, _ in SECTIONS}
    sections["Other"] = []
    for metric in metrics:
        if metric.rsplit(".", 1)[-1] in NOT_CHARTED:
            continue
        series = [
            (run.name, [(r.number, r.values[metric]) for r in run.rounds if metric in r.values], colours[run.name])
            for run in runs
        ]
        series = [s for s in series if s[1]]
        title = next((t for t, prefix in SECTIONS if metric.startswith(prefix)), "Other")
        label = TITLES.get(metric) or (metric.split(".", 1)[1] if "." in metric else metric)
        sections[title].append(line_svg(label, series, y_from_zero=cannot_be_negative(metric)))
    verdicts = _verdict_groups(runs)
    if verdicts:
        strips = colours if len(runs) > 1 else None  # each bar marked with its run's colour
        sections["Pairs judged by ground truth"].insert(
            0, stacked_svg("pair verdicts (chosen vs rejected)", verdicts, VERDICTS, strips)
        )
    marks = _round_starts(runs[0])
    step_charts = [
        line_svg(
            f"{name} per step",
            [(run.name, _step_series(run, name), colours[run.name]) for run in runs],
            x_label="step (all rounds)",
            marks=marks,
            y_from_zero=cannot_be_negative(name),
        )
        for name in STEP_METRICS
        if any(name in s for run in runs for r in run.rounds for s in r.steps)
    ]
    sections["DPO training"] += step_charts
    return {
        "title": "rounds: " + ", ".join(names),
        "generated": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "runs": [
            {
                "name": run.name,
                "path": str(run.path),
                "colour": colours[run.name],
                "lineage": lineage(run),
                "table": table(run),
                "settings": settings(run),
            }
            for run in runs
        ],
        "sections": [(title, charts) for title, charts in sections.items() if charts],
    }


def cannot_be_negative(metric: str) -> bool:
    """Whether a metric (``eval.chair.chair_s``, ``train.loss/ica``, ``data.rows``) is a rate, a count or a loss."""
    name = metric.rsplit(".", 1)[-1]  # chair_s, rewards/accuracies, loss/ica
    last = name.rsplit("/", 1)[-1]
    return last in NOT_NEGATIVE or name in ("rows", "loss") or name.endswith("_loss") or name.startswith("loss/")


def lineage(run: Run) -> list[dict[str, Any]]:
    """The chain base model -> data r1 -> model 1 -> data r2 -> ... as boxes (kind, title, facts)."""
    chain: list[dict[str, Any]] = []
    first = next((r for r in run.rounds if r.number > 0), None)
    base = (run.rounds[0].lineage.get("model") if run.rounds and run.rounds[0].number == 0 else None) or (
        first.lineage.get("parent_model") if first else None
    )
    chain.append({"kind": "model", "title": "base model", "facts": [_model_name(base) if base else "?"]})
    for r in run.rounds:
        if r.number == 0:
            continue
        data = r.lineage.get("data") or {}
        version = data.get("version") or data.get("revision") or "?"
        facts = [f"{data.get('rows', '?')} pairs"]
        source = data.get("store") or (f"hf://{data['hub']}" if data.get("hub") else None)
        if source and Path(source) != (run.path / "data").resolve():  # a single run: say which store it read
            facts.append(f"from {source}")
        manifest = run.versions.get(version)
        if manifest is not None and manifest.drops:
            facts.append(f"dropped {sum(manifest.drops.values())}")
        if "eval.pairs.accuracy" in r.values:
            facts.append(f"pair accuracy {r.values['eval.pairs.accuracy']:.3g}")
        if data.get("model"):
            facts.append(f"built by {_model_name(data['model'])}")
        chain.append({"kind": "data", "title": f"data {version}", "facts": facts})
        facts = [f"loss {r.values['train.train_loss']:.4g}"] if "train.train_loss" in r.values else []
        if "train.rewards/accuracies" in r.values:
            facts.append(f"reward acc {r.values['train.rewards/accuracies']:.3g}")
        if "eval.chair.chair_s" in r.values:
            facts.append(f"CHAIR_s {r.values['eval.chair.chair_s']:.3g}")
        chain.append({"kind": "model", "title": f"model {r.number}", "facts": facts})
    return chain


def table(run: Run) -> tuple[list[str], list[list[Any]]]:
    """Every recorded value per round: the `prefgen rounds --all` table."""
    names = sorted({k for r in run.rounds for k in r.values})
    rows = [
        [
            r.number,
            (r.lineage.get("data") or {}).get("version", "base" if r.number == 0 else "-"),
            *[r.values.get(n) for n in names],
        ]
        for r in run.rounds
    ]
    return ["round", "data", *names], rows


# ---------------------------------------------------------------------------------------------- helpers


def _verdict_groups(runs: list[Run]):
    groups = []
    numbers = sorted({r.number for run in runs for r in run.rounds if r.number > 0})
    for number in numbers:
        bars = []
        for run in runs:
            found = next((r for r in run.rounds if r.number == number), None)
            if found is not None and any(f"eval.pairs.{v}" in found.values for v, _ in VERDICTS):
                bars.append(
                    (
                        run.name if len(runs) > 1 else "",
                        {v: found.values.get(f"eval.pairs.{v}", 0) for v, _ in VERDICTS},
                    )
                )
        if bars:
            groups.append((f"r{number}", bars))
    return groups


def _step_series(run: Run, name: str) -> list[tuple[float, float]]:
    points, offset = [], 0
    for r in run.rounds:
        steps = [s for s in r.steps if name in s and "step" in s]
        points += [(offset + s["step"], s[name]) for s in steps]
        offset += max((s["step"] for s in r.steps if "step" in s), default=0)
    return points


def _model_name(path: Any) -> str:
    """A model folder as people name it: round-<r>/model is "round-<r>", anything else its folder name."""
    path = Path(str(path))
    return path.parent.name if path.name == "model" and path.parent.name.startswith("round-") else path.name


def _round_starts(run: Run) -> list[tuple[float, str]]:
    """Where each round after the first begins on the all-rounds step axis, as chart guides."""
    marks, offset = [], 0
    for r in run.rounds:
        last = max((s["step"] for s in r.steps if "step" in s), default=0)
        if offset and last:
            marks.append((offset + 0.5, f"round {r.number}"))
        offset += last
    return marks


def _names(paths: list[Path]) -> list[str]:
    """Short names for the runs: folder names, or more of the path where two would read the same."""
    names = [p.resolve().name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return names
