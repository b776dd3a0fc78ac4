"""The one way prefgen writes files that others read: completely or not at all.

- ``atomic_file(path)`` yields a temporary path in the same folder for any writer (``pq.write_table``, ``open``);
  when the block ends the file is flushed to disk and renamed over ``path`` with ``os.replace``, so a reader (or a
  process killed half-way) sees the old file or the new one, never part of one. ``atomic_write_text`` and
  ``atomic_write_bytes`` are the one-call forms.
- ``replace_folder(src, dest)`` moves a finished folder into place with one rename; ``folder_beside(dest)`` yields
  a hidden sibling to fill, moved into place when the block ends and removed if it fails.
- ``read_json(path)`` reads JSON, or says in one line which file is broken and where.

A full disk (ENOSPC, EDQUOT) becomes a ``DiskFullError`` naming the folder; the temporary file is removed, and the
file being replaced is left as it was. Temporary names start with a dot and end in ``.tmp``, so the globs readers
use (``*.json``, ``*.parquet``) never match them.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from prefgen.core.errors import PrefgenError

_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(PrefgenError):
    """A write that ran out of disk space (or quota)."""


def disk_full(exc: BaseException, folder: str | os.PathLike) -> DiskFullError | None:
    """The one-line error for ``exc`` when it is a full disk, else None (callers re-raise the original)."""
    if isinstance(exc, OSError) and (exc.errno in _FULL or "No space left on device" in str(exc)):
        return DiskFullError(f"no space left on the device holding {folder}: free some space and run again")
    return None


def temp_name(path: Path, suffix: str = ".tmp") -> Path:
    """A hidden, unique sibling of ``path``: never matched by ``*.json`` or ``*.parquet`` globs."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` (fsynced first), on failure it is removed."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        full = disk_full(exc, path.parent)
        if full is not None:
            raise full from None
        raise
    fsync_folder(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def move_file(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Move a complete file into place (``os.replace``: atomic on one file system) and make the move durable."""
    os.replace(src, dest)
    fsync_folder(Path(dest).parent)


def replace_folder(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Move the finished folder ``src`` to ``dest`` (same file system). An existing ``dest`` is first renamed aside
    and removed after the move, so ``dest`` is at every moment absent, the old folder or the new one, never a mix."""
    src, dest = Path(src), Path(dest)
    old = temp_name(dest, ".old") if dest.exists() else None
    try:
        if old is not None:
            os.rename(dest, old)
        os.rename(src, dest)
    except OSError as exc:
        if old is not None and not dest.exists():
            os.rename(old, dest)  # put the old folder back
        full = disk_full(exc, dest.parent)
        if full is not None:
            raise full from None
        raise
    fsync_folder(dest.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def folder_beside(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a new hidden folder beside ``dest``; when the block ends it replaces ``dest``, when it fails it goes."""
    final = Path(os.path.abspath(dest))  # a sibling even when dest is "." or ends in ".."
    check_writable(final.parent)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final, ".partial")
    tmp.mkdir()
    try:
        yield tmp
        replace_folder(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = disk_full(exc, final.parent)
        if full is not None:
            raise full from None
        raise


def read_json(path: str | os.PathLike, shown: str | None = None) -> Any:
    """The JSON in ``path``; a broken or unreadable file is one line naming it (as ``shown``) and the error's place."""
    name = shown or str(path)
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise PrefgenError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PrefgenError(f"{name}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError:
        raise PrefgenError(f"{name}: not valid JSON: not UTF-8 text") from None


def check_writable(folder: str | os.PathLike) -> None:
    """Fail early, in one line, when ``folder`` (or the nearest existing folder above it) cannot be written: a probe
    file is created and removed, which also catches read-only mounts and root-owned folders that permissions miss."""
    folder = Path(folder)
    existing = next((p for p in [folder, *folder.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise PrefgenError(f"cannot write to {folder}: {existing} is a file")
    probe = temp_name(existing / "write-probe")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        full = disk_full(exc, existing)
        if full is not None:
            raise full from None
        where = "" if existing == folder else f" (in {existing})"
        raise PrefgenError(f"cannot write to {folder}: {exc.strerror or exc}{where}") from None
    probe.unlink()


def fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
