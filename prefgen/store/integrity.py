"""Integrity checks of single files against what a version's manifest recorded when it was published.

Two depths. ``file_problem(..., full=False)`` is cheap (the file's size and parquet's ``PAR1`` marks at both ends),
so every read runs it first: a truncated, missing or foreign file is named before DuckDB or Arrow can fail on it.
``full=True`` adds the sha256 of every byte and the row count from the parquet footer; ``prefgen verify``,
``push`` and ``pull`` run it. Hashing streams each file through one reused buffer, so memory stays flat whatever
the file size.

A problem is one line: the file (relative to the store) and what differs, e.g.
``data/v1/train-00000-of-00001.parquet: truncated (2000 of 51234 bytes)``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prefgen.core.errors import StoreError
from prefgen.store.manifest import ShardInfo

MAGIC = b"PAR1"
PENDING = "manifest.pending.json"  # a publication a killed writer left half-way: the next writer completes it
_BLOCK = 1 << 20
Progress = Callable[[int], None]  # called with the bytes hashed since the last call


@dataclass(frozen=True)
class Problem:
    path: str  # relative to the store root, with forward slashes
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


# ---------------------------------------------------------------------------------------------- one file


def file_problem(path: Path, expected: ShardInfo, *, full: bool, progress: Progress | None = None) -> str | None:
    """What is wrong with one data file against its manifest entry, or None. Cheap unless ``full``."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    if size < expected.bytes:
        return f"truncated ({size} of {expected.bytes} bytes)"
    if size > expected.bytes:
        return f"{size} bytes where the manifest says {expected.bytes}"
    if not has_parquet_marks(path):
        return "not a parquet file (no PAR1 mark at its start and end)"
    if not full:
        return None
    if sha256_file(path, progress) != expected.sha256:
        return "sha256 differs from the manifest (its bytes changed after it was published)"
    rows = parquet_rows(path)  # the same bytes as published: only a manifest edited since can disagree
    if rows is None:
        return "not a readable parquet file (its footer is damaged)"
    if rows != expected.rows:
        return f"{rows} rows where the manifest says {expected.rows}"
    return None


def has_parquet_marks(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4:
            return False
        fh.seek(-4, os.SEEK_END)
        return head == MAGIC and fh.read(4) == MAGIC


def parquet_rows(path: Path) -> int | None:
    """The row count in the parquet footer, or None when the footer cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path).num_rows
    except (OSError, pa.ArrowException):
        return None


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    """The file's sha256, read in 1 MiB blocks into one buffer (hashlib releases the GIL while it hashes)."""
    digest = hashlib.sha256()
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(view[:n])
            if progress is not None:
                progress(n)
    return digest.hexdigest()


def rejects_problem(path: Path, expected_rows: int, *, full: bool) -> str | None:
    """rejects/<version>.parquet has no hash in the manifest, only a row count; versions made by derive or pull
    may have none when they rejected nothing."""
    if not path.is_file():
        return f"missing (the manifest counts {expected_rows} rejected rows)" if expected_rows else None
    if not has_parquet_marks(path):
        return "not a parquet file (no PAR1 mark at its start and end)"
    if full:
        rows = parquet_rows(path)
        if rows is None:
            return "not a readable parquet file (its footer is damaged)"
        if rows != expected_rows:
            return f"{rows} rows where the manifest says {expected_rows}"
    return None


def damaged(root: Path, version: str, problem: Problem) -> StoreError:
    """The one line a reader of a damaged version stops with: which file, what is wrong, what to run."""
    return StoreError(f"version {version} is damaged: {problem}; run `prefgen verify {root}`")
