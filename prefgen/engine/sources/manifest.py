"""Manifests as a source: a jsonl or parquet file with one image path per line (relative to the file), and
optionally a question and extra columns. Every non-blank line is an item, even a broken one, so that it is counted
as a ``bad_manifest_line`` or ``missing_image`` drop instead of vanishing."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from prefgen.core.config import resolve_path
from prefgen.core.errors import PrefgenError
from prefgen.engine.sources.common import (
    Listing,
    Record,
    SourceItem,
    check_columns,
    copy_fields,
    first_line,
    printable,
    stat_fingerprint,
)
from prefgen.recipe.sources import ManifestSource


@dataclass(frozen=True)
class _Line:
    number: int  # jsonl: line number (from 1, as editors show it); parquet: row index (from 0)
    row: dict | None  # None for a line that is not a JSON object
    digest: str  # of the line or row: an edited question changes the item's fingerprint
    error: str = ""


def manifest_listing(source: ManifestSource, base_dir: Path) -> Listing:
    """Keys ``"<line>:<image path>"``; an item's fingerprint follows both its line and its image file."""
    path = resolve_path(source.path, base_dir)
    lines = _manifest_lines(source, path)

    def fingerprint(i: int) -> str:
        image = _image_path(lines[i], source)
        return f"{stat_fingerprint(path.parent / image) if image else 'none'}:{lines[i].digest}"

    return [_key(line, source) for line in lines], fingerprint


def manifest_records(source: ManifestSource, items: list[SourceItem], base_dir: Path) -> list[Record]:
    """One record per item; raises PrefgenError when the manifest no longer matches the listing the build began
    with, since its items would then be other lines than the ones the cache and the draft know."""
    path = resolve_path(source.path, base_dir)
    lines = _manifest_lines(source, path)
    records = []
    for item in items:
        line = lines[item.index] if item.index < len(lines) else None
        if line is None or item.key != _key(line, source):
            raise PrefgenError(f"manifest {path} changed during the build; start the build again")
        image = _image_path(line, source)
        record = Record(printable(image or item.key), Path(image or "").name)
        if line.row is None:
            record.problem = ("bad_manifest_line", line.error)
        elif image is None:
            value = line.row.get(source.image_column)
            record.problem = ("missing_image", f"{source.image_column!r} holds no image path: {value!r}")
        else:
            record.file = path.parent / image
            copy_fields(record, source, line.row)
        records.append(record)
    return records


def _key(line: _Line, source: ManifestSource) -> str:
    return f"{line.number}:{_image_path(line, source) or ''}"


def _image_path(line: _Line, source: ManifestSource) -> str | None:
    image = line.row.get(source.image_column) if line.row else None
    return image if isinstance(image, str) and image else None


def _manifest_lines(source: ManifestSource, path: Path) -> list[_Line]:
    try:
        info = path.stat()
        lines = _read_manifest(path, (info.st_size, info.st_mtime_ns))
    except OSError as exc:
        raise PrefgenError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    check_columns(source, {key for line in lines if line.row for key in line.row}, f"manifest {path}")
    return lines


@functools.lru_cache(maxsize=4)
def _read_manifest(path: Path, _stamp: tuple[int, int]) -> list[_Line]:
    """The parsed lines. ``load_rows`` runs once per shard: the cache parses the manifest once per change, not once
    per shard. ``_stamp`` (size, modification time) is unused here but part of the cache key, so that an edit is
    seen."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a file that is not parquet
            raise PrefgenError(f"cannot read manifest {path}: {first_line(exc)}") from None
        return [_Line(i, row, _digest(json.dumps(row, sort_keys=True, default=str))) for i, row in enumerate(rows)]
    lines = []
    for number, raw in enumerate(path.read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row, error = json.loads(raw.decode("utf-8")), ""
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            row, error = None, f"line {number}: not valid JSON ({exc})"
        if row is not None and not isinstance(row, dict):
            row, error = None, f"line {number}: a JSON {type(row).__name__}, not an object"
        lines.append(_Line(number, row, _digest(raw), error))
    return lines


def _digest(data: str | bytes) -> str:
    return hashlib.sha1(data.encode() if isinstance(data, str) else data).hexdigest()[:12]
