"""What a build shows while it runs: a progress bar per stage (rows, rows/s, ETA) and, on request, a JSON-lines log
of events (one object per line: build, shard and stage events with counts and timings)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


class Reporter:
    def __init__(self, quiet: bool = False, log_json: Path | None = None):
        self._log = open(log_json, "a", encoding="utf-8") if log_json else None
        self._progress = None
        self._tasks: dict[str, Any] = {}
        if not quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>9}"), TimeRemainingColumn(),
                console=Console(file=sys.stderr), transient=False,
            )

    def __enter__(self) -> "Reporter":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._log is not None:
            self._log.close()

    def event(self, kind: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.write(json.dumps({"event": kind, "time": round(time.time(), 3), **fields}, default=str) + "\n")
            self._log.flush()

    def stages(self, labels: list[str], expected_rows: int) -> None:
        """One bar per stage; totals start at the expected source rows and follow the rows that really arrive."""
        if self._progress is None:
            return
        for label in labels:
            self._tasks[label] = self._progress.add_task(label, total=expected_rows, rate="")

    def advance(self, label: str, rows: int, seconds: float) -> None:
        if self._progress is None or label not in self._tasks:
            return
        task = self._tasks[label]
        self._progress.advance(task, rows)
        done = self._progress.tasks[task].completed
        elapsed = self._progress.tasks[task].elapsed or seconds or 1e-9
        self._progress.update(task, rate=f"{done / elapsed:,.1f} r/s")

    def retotal(self, label: str, total: int) -> None:
        if self._progress is not None and label in self._tasks:
            self._progress.update(self._tasks[label], total=max(total, self._progress.tasks[self._tasks[label]].completed))

    def message(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text)
