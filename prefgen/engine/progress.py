"""What a build shows while it runs: a progress bar per stage and, on request, a JSON-lines log of events (one
object per line: build, shard and stage events with counts and timings).

Each bar counts the rows that went *into* its stage against the rows expected to go in, and shows apart what came
out: a stage may emit several rows per input row (one image, several questions) or drop some, so rows out are not
progress. The source's bar counts images against the images this run reads. A stage's total is only known once the
last shard reaches it: until then it is the rows handed to the stage so far plus, for the shards still to come, as
many rows per source image as arrived so far. Totals therefore never fall below what is done, and end equal to it.

A bar's rate is rows in per second of that stage's own work: in-process, the time from a shard's rows being handed to
the stage to the stage's last batch of them (stages run one after another); on Ray, the seconds the workers report.
Messages are printed whole: a console that is not a terminal gets no line breaks of ours.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: The label of the source's bar; every other bar is a stage's.
SOURCE = "source"


@dataclass
class StageCount:
    """One bar's numbers."""

    total: int  # input rows expected: exact for the source, estimated for a stage until its last shard
    done: int = 0  # input rows consumed
    handed: int = 0  # input rows handed to the stage so far (consumed or about to be)
    out: int = 0  # rows the consumed ones became
    dropped: int = 0  # consumed rows dropped
    seconds: float = 0.0  # the stage's own time on the rows consumed
    since: float | None = None  # in-process: when the rows now being consumed were handed over (or the last batch)


class Reporter:
    """Bars on ``console`` (default stderr) unless ``quiet``; the numbers behind them are kept in ``counts`` either
    way."""

    def __init__(self, quiet: bool = False, log_json: Path | None = None, console: IO[str] | None = None):
        self._log = open(log_json, "a", encoding="utf-8") if log_json else None
        self._progress = None
        self._tasks: dict[str, Any] = {}
        self.counts: dict[str, StageCount] = {}
        if not quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description:<18}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[flow]:<24}"),
                TextColumn("{task.fields[rate]:>12}"),
                TimeRemainingColumn(),
                console=Console(file=console or sys.stderr, width=_terminal_width(console or sys.stderr)),
                transient=False,
            )

    def __enter__(self) -> Reporter:
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

    def stages(self, labels: list[str], items: int) -> None:
        """A bar for the source, which reads ``items`` images in this run, and one per stage label. Before any
        shard reaches a stage, its total assumes one row per image."""
        self.counts = {label: StageCount(total=items) for label in [SOURCE, *labels]}
        if self._progress is not None:
            for label in self.counts:
                self._tasks[label] = self._progress.add_task(label, total=items, rate="", flow="")

    def hand(self, label: str, rows: int) -> None:
        """``rows`` input rows (a shard's) are handed to ``label``: the stage's total is re-estimated from them."""
        count = self.counts[label]
        count.handed += rows
        count.since = time.perf_counter()
        if label != SOURCE:
            count.total = count.handed + self._still_expected(count)
        self._show(label)

    def advance(self, label: str, rows: int, out: int, dropped: int, seconds: float | None = None) -> None:
        """``label`` consumed ``rows`` of the rows handed to it, which became ``out`` rows and ``dropped`` drops, in
        ``seconds`` of the stage's work (default: the time since the rows were handed over or the last batch)."""
        count = self.counts[label]
        now = time.perf_counter()
        if seconds is None and count.since is not None:
            seconds = now - count.since
        count.seconds += seconds or 0.0
        count.since = now
        count.done += rows
        count.out += out
        count.dropped += dropped
        self._show(label)

    def message(self, text: str) -> None:
        """A line of prefgen's own, as it is (no wrapping at the console's width), unless quiet."""
        if self._progress is not None:
            self._progress.console.print(text, soft_wrap=True, markup=False, highlight=False)

    def _still_expected(self, count: StageCount) -> int:
        """Rows the stage should still get: as many per image still to be read as it got per image read so far."""
        source = self.counts[SOURCE]
        left = source.total - source.done
        return round(count.handed * left / source.done) if source.done else left

    def _show(self, label: str) -> None:
        if self._progress is None or label not in self._tasks:
            return
        count, task = self.counts[label], self._tasks[label]
        self._progress.update(
            task,
            total=count.total,
            completed=count.done,
            rate=f"{count.done / count.seconds:,.1f} r/s" if count.seconds > 0 and count.done else "",
            flow=f"→ {count.out:,} out, {count.dropped:,} dropped",
        )


def _terminal_width(stream) -> int | None:
    """The width of the terminal ``stream`` writes to; None (rich's default) when it is not a terminal."""
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else None
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
