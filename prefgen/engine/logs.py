"""The console for prefgen, a log file for everyone else.

A build or a training run loads libraries that talk: transformers' "Loading weights" bars and ``FutureWarning``s,
open_clip's ``ERROR:root:`` lines, Ray's actor warnings and the lines of every Ray worker, which Ray forwards to the
driver. ``capture(path)`` sends all of that to a log file: ``sys.stdout`` and ``sys.stderr`` (so ``print``,
``warnings`` and logging handlers that write to them) and the process' file descriptors 1 and 2 (so C++ code such as
Ray's core worker, and processes started meanwhile, such as a local Ray cluster). prefgen's own progress and
messages go to ``Capture.console``: the terminal (or whatever stderr was) as it was before.

Streams that a library picks up while the capture is on (a logging handler made then, a tqdm bar) keep working after
it: they hold a stand-in that writes to the log file during the capture and to the original stream after it.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Iterator


@dataclass
class Capture:
    """Where the capture writes: ``path`` (None once removed for being empty) and ``console``, prefgen's stream."""

    path: Path | None
    console: IO[str]


class _StandIn(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` during a capture: the log file while it lasts, the original stream after."""

    def __init__(self, original: IO[str]):
        self._original, self.target = original, None

    def _stream(self) -> IO[str]:
        return self.target if self.target is not None else self._original

    def write(self, text: str) -> int:
        return self._stream().write(text)

    def flush(self) -> None:
        _flush(self._stream())

    def isatty(self) -> bool:
        try:
            return False if self.target is not None else self._original.isatty()
        except ValueError:  # the original closed (at exit), as libraries that kept the stand-in find out
            return False

    def fileno(self) -> int:
        return self._stream().fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return getattr(self._stream(), "encoding", None) or "utf-8"


_active: list[Capture] = []


def log_path(folder: Path, kind: str) -> Path:
    """A new log file's path in ``folder``: ``<kind>-<UTC time>.log``."""
    return Path(folder) / f"{kind}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S-%f}.log"


@contextmanager
def capture(path: Path) -> Iterator[Capture]:
    """Third-party output into ``path`` for the duration; yields the ``Capture`` whose ``console`` prefgen writes
    to. An empty log file is removed at the end (``path`` becomes None); an error raised inside carries the log's
    path as ``log_file``. Inside another capture, this one is the outer one: one log file per command."""
    if _active:
        yield _active[-1]
        return
    try:
        log, made = _open(Path(path))
    except OSError:  # a folder we may not write to (a read-only store, which the caller reports): the temp folder
        log, made = _open(Path(tempfile.gettempdir()) / "prefgen-logs" / Path(path).name)
    path = Path(log.name)
    for stream in (sys.stdout, sys.stderr):
        _flush(stream)
    console, own_console = sys.stderr, False
    if _fd(sys.stderr) == 2:  # the process' stderr: keep a copy of it for prefgen before fd 2 goes to the log
        console = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")
        own_console = True
    saved = [os.dup(1), os.dup(2)]
    stand_ins = (_StandIn(sys.stdout), _StandIn(sys.stderr))
    originals = (sys.stdout, sys.stderr)
    found, error = Capture(path, console), None
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        for stand_in in stand_ins:
            stand_in.target = log
        sys.stdout, sys.stderr = stand_ins
        _active.append(found)
        yield found
    except Exception as exc:
        error = exc
        raise
    finally:
        if found in _active:
            _active.remove(found)
        for stream in (*stand_ins, *originals):
            _flush(stream)
        sys.stdout, sys.stderr = originals
        for stand_in in stand_ins:
            stand_in.target = None
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        log.close()
        if own_console:
            _flush(console)
            console.close()
        if _size(path) == 0:  # nothing to keep: no file, and no folders made for it
            path.unlink()
            found.path = None
            for folder in made:
                try:
                    folder.rmdir()
                except OSError:  # something else was put there meanwhile (the store's drafts)
                    break
        if error is not None and found.path is not None:
            error.log_file = found.path  # the CLI names it under the error's line


def _open(path: Path) -> tuple[IO[str], list[Path]]:
    """The log file, opened for appending, and the folders made for it (innermost first)."""
    made = [folder for folder in [path.parent, *path.parent.parents] if not folder.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", encoding="utf-8", errors="replace", buffering=1), made


def _size(path: Path) -> int | None:
    """The file's size; None when it was moved away meanwhile (another process renamed its folder)."""
    try:
        return path.stat().st_size
    except OSError:
        return None


def _fd(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def _flush(stream) -> None:
    try:
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass
