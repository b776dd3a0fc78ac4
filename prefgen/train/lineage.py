"""The one reader and writer of training output folders: a single run (`prefgen train --data`) or a rounds folder
(`prefgen train --rounds`). Everything that reads them — `prefgen rounds`, the rounds report, a resumed loop —
goes through here, so the layout has one definition:

    RUN/lineage.json             one trained model: parent model, data version, settings, final metrics, evaluation
    RUN/metrics.jsonl            trl's log, one JSON object per logging step

    DIR/data/                    the store; version r<r> was built by model r-1 (its manifest says so)
    DIR/round-<r>/model/         model r, a RUN folder as above
    DIR/round-0.json             the base model's evaluation, when the loop was asked to evaluate
    DIR/logs/eval-<r>.log        what the libraries printed while model r was evaluated (0: the base model)

A round is finished once its model's lineage exists; a folder name that is not ``round-<digits>`` is not a round.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefgen.core.errors import PrefgenError
from prefgen.core.fs import atomic_write_text

LINEAGE = "lineage.json"
METRICS = "metrics.jsonl"
BASE_EVAL = "round-0.json"
STORE = "data"
_ROUND = re.compile(r"^round-(\d+)$")


@dataclass
class Round:
    """One finished round (or the base model, round 0, or a single run, round 1) as recorded."""

    number: int
    lineage: dict[str, Any]
    model_dir: Path | None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def eval(self) -> dict[str, Any]:
        return self.lineage.get("eval") or {}


class RunFolder:
    """A training output folder: a rounds folder, or a single run's model folder read as a one-round run."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ---------------------------------------------------------------------------------------- layout

    @property
    def store_path(self) -> Path:
        return self.root / STORE

    def model_dir(self, r: int) -> Path:
        return self.root / f"round-{r}" / "model"

    @staticmethod
    def version(r: int) -> str:
        return f"r{r}"

    def eval_log(self, r: int) -> Path:
        return self.root / "logs" / f"eval-{r}.log"

    def data_ref(self, r: int) -> str:
        return f"{self.store_path}@{self.version(r)}"

    @property
    def single_run(self) -> bool:
        """A `prefgen train --data` output: its own lineage at the top, no rounds."""
        return (self.root / LINEAGE).is_file()

    def exists(self) -> bool:
        """Whether anything trained or evaluated is recorded here (a round folder without a lineage is not)."""
        finished = any((folder / LINEAGE).is_file() for _, folder in self._round_dirs())
        return self.single_run or (self.root / BASE_EVAL).is_file() or finished

    # ---------------------------------------------------------------------------------------- reading

    def lineage(self, r: int) -> dict[str, Any] | None:
        """Round ``r``'s lineage, or None while the round is not finished."""
        return read_json(self.model_dir(r) / LINEAGE)

    def base(self) -> dict[str, Any] | None:
        """The base model's evaluation record (``{"round": 0, "model", "eval"}``), if taken."""
        return read_json(self.root / BASE_EVAL)

    def rounds(self, with_steps: bool = False) -> list[Round]:
        """Every finished round in order, the base model's evaluation first as round 0; a single run is round 1.
        One line of error when the folder holds nothing trained."""
        if not self.root.is_dir():
            raise PrefgenError(f"{self.root} is not a rounds folder or training run: no such folder")
        if self.single_run:
            return [self._round(1, self.root, with_steps)]
        found = []
        base = self.base()
        if base is not None:
            found.append(Round(0, {"model": base.get("model"), "eval": base.get("eval") or {}}, None))
        for r, folder in self._round_dirs():
            if (folder / LINEAGE).is_file():
                found.append(self._round(r, folder, with_steps))
        if not found:
            raise PrefgenError(
                f"{self.root} holds no finished training (no {LINEAGE}, {BASE_EVAL} or round-<r>/model/{LINEAGE})"
            )
        return found

    def _round(self, r: int, folder: Path, with_steps: bool) -> Round:
        lineage = read_json(folder / LINEAGE, required=True)
        return Round(r, lineage, folder, read_jsonl(folder / METRICS) if with_steps else [])

    def _round_dirs(self) -> list[tuple[int, Path]]:
        if not self.root.is_dir():
            return []
        found = [(int(m.group(1)), p / "model") for p in self.root.iterdir() if (m := _ROUND.match(p.name))]
        return sorted(found)

    # ---------------------------------------------------------------------------------------- writing

    def write_base(self, model: str | Path, evaluation: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.root / BASE_EVAL, {"round": 0, "model": str(model), "eval": evaluation})

    def write_lineage(self, r: int, lineage: dict[str, Any]) -> None:
        write_json(self.model_dir(r) / LINEAGE, lineage)


def is_run_folder(path: str | Path) -> bool:
    """Whether ``path`` holds training output (a single run or a rounds folder)."""
    return Path(path).is_dir() and RunFolder(path).exists()


def flatten_metrics(values: dict, prefix: str = "") -> dict[str, Any]:
    """Nested metrics as one level of dotted names (``pope.random.f1``), numbers only."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


def read_json(path: Path, required: bool = False) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when absent (or, unless ``required``, unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if required:
            raise PrefgenError(
                f"{path} is not readable JSON ({exc}); the run that wrote it may have been cut off"
            ) from None
        return None
    return data if isinstance(data, dict) else None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines log; a line cut off by a crash is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` beside ``path`` and rename it in, so readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2))
