"""``prefgen export``: write a version in the JSON formats other trainers read, with its images as files beside it.

    <out>/images/<image_id or sha256[:16]>.<png|jpg|webp|...>   each distinct image once
    <out>/data.json           llava, seva, llamafactory: one JSON list
    <out>/data.jsonl          jsonl: one row per line, every column
    <out>/dataset_info.json   llamafactory: registers data.json as sharegpt ranking data

Formats:
    llava          what CSR's construct.py writes: LLaVA ``conversations`` (chosen) and ``rejected_conversations``
    seva           SeVa/SENA: ``id``, ``question``, ``chosen``, ``reject``, ``image``
    llamafactory   LLaMA-Factory sharegpt ranking data, one ``<image>`` placeholder per image
    jsonl          every column; ``images`` becomes the list of image paths

Image paths in the data are relative to ``out``. llava and seva hold one image per pair, so rows with several keep
the first (a warning counts them). Rows are read batch by batch with pyarrow and written as they are read, so memory
stays at one batch whatever the size of the version. The export is built in a hidden sibling folder and renamed to
``out`` at the end: a failure leaves no half-written export behind.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa

from prefgen.core.errors import PrefgenError
from prefgen.core.fs import folder_beside
from prefgen.store.folder import Store

FORMATS = ("llava", "seva", "llamafactory", "jsonl")
_BATCH_ROWS = 100  # the store's row group size: rows carry their image bytes, so batches stay small
_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "TIFF": "tif"}  # PIL format names whose usual extension differs
_SAFE_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # an image_id usable as a file name as it is
_FORMAT_COLUMNS = ("id", "images", "prompt", "chosen", "rejected", "image_id")

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    version: str
    rows: int
    files: list[Path]  # the data files written (not the images)


def export_version(store: Store, version: str | None, fmt: str, out: Path) -> ExportResult:
    """Export ``version`` of ``store`` (the latest when None) as ``fmt`` into the new or empty folder ``out``."""
    if fmt not in FORMATS:
        raise PrefgenError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PrefgenError(f"{out} exists and is not empty; choose an empty folder")
    manifest = store.manifest(version)
    sources = store.data_files(manifest.version)  # the cheap checks: missing, truncated, not parquet
    try:
        with folder_beside(out) as tmp:  # an empty `out` is replaced (checked above)
            rows, names = _write(sources, fmt, tmp, _dataset_name(store, manifest.version))
    except (pa.ArrowException, OSError):  # a damaged page surfaces as either (e.g. "Couldn't deserialize thrift")
        found = store.damage(manifest, full=True)  # the cheap checks passed: only the hash can tell
        if found is not None:
            raise found from None
        raise
    return ExportResult(version=manifest.version, rows=rows, files=[out / name for name in names])


def _write(sources: list[Path], fmt: str, folder: Path, dataset_name: str) -> tuple[int, list[str]]:
    (folder / "images").mkdir()
    to_record, one_array = _FORMATTERS[fmt], fmt != "jsonl"
    data_name = "data.json" if one_array else "data.jsonl"
    rows = extra_images = 0
    with open(folder / data_name, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("[" if one_array else "")
        for row in _rows(sources, every_column=fmt == "jsonl"):
            paths = [_write_image(folder / "images", image, row) for image in row["images"] or []]
            text = json.dumps(to_record(row, paths), ensure_ascii=False, default=_json_default)
            if one_array:  # streamed item by item, so a large version is never held in memory
                fh.write(("\n" if rows == 0 else ",\n") + text)
            else:
                fh.write(text + "\n")
            rows += 1
            extra_images += int(fmt in ("llava", "seva") and len(paths) > 1)
        fh.write("\n]\n" if one_array else "")
    if extra_images:
        log.warning("%d rows have several images; the %s format keeps only the first of each", extra_images, fmt)
    if fmt != "llamafactory":
        return rows, [data_name]
    columns = {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "images": "images"}
    info = {dataset_name: {"file_name": data_name, "formatting": "sharegpt", "ranking": True, "columns": columns}}
    (folder / "dataset_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return rows, [data_name, "dataset_info.json"]


def _rows(sources: list[Path], every_column: bool) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for source in sources:
        with pq.ParquetFile(source) as pf:
            present = pf.schema_arrow.names
            columns = None if every_column else [c for c in _FORMAT_COLUMNS if c in present]
            for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
                yield from batch.to_pylist()


def _write_image(folder: Path, image: dict[str, Any], row: dict[str, Any]) -> str:
    """Write one image (once per distinct image) and return its path relative to the export folder."""
    from PIL import Image, UnidentifiedImageError

    data = image.get("bytes")
    if data is None:  # datasets keeps only the path of images given as paths
        source = image.get("path")
        if not source or not Path(source).is_file():
            raise PrefgenError(f"row {row['id']!r}: an image has no bytes in the store and {source!r} is not a file")
        data = Path(source).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as decoded:
            kind = decoded.format or "bin"
    except (UnidentifiedImageError, OSError) as exc:
        raise PrefgenError(f"row {row['id']!r}: an image cannot be read ({exc})") from None
    ext = _EXTENSIONS.get(kind, kind.lower())
    digest = hashlib.sha256(data).hexdigest()
    image_id = row.get("image_id")
    # image_id names the row's one image; a name already taken by other bytes falls back to the content hash
    stems = [image_id] if image_id and len(row["images"]) == 1 and _SAFE_STEM.match(image_id) else []
    for stem in [*stems, digest[:16], digest]:
        target = folder / f"{stem}.{ext}"
        if not target.exists():
            target.write_bytes(data)
            break
        if target.read_bytes() == data:
            break
    return f"images/{target.name}"


def _last(row: dict[str, Any], column: str, role: str) -> str:
    """The content of the last ``role`` message of ``column``: the question, or the answer after any context."""
    for message in reversed(row[column] or []):
        if message["role"] == role:
            return message["content"]
    raise PrefgenError(f"row {row['id']!r}: {column} has no {role} message")


def _llava(row: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    human = {"from": "human", "value": ("<image>\n" if paths else "") + _last(row, "prompt", "user")}
    return {
        "id": row["id"],
        **({"image": paths[0]} if paths else {}),
        "conversations": [human, {"from": "gpt", "value": _last(row, "chosen", "assistant")}],
        "rejected_conversations": [human, {"from": "gpt", "value": _last(row, "rejected", "assistant")}],
    }


def _seva(row: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "question": _last(row, "prompt", "user"),
        "chosen": _last(row, "chosen", "assistant"),
        "reject": _last(row, "rejected", "assistant"),
        "image": paths[0] if paths else None,
    }


def _llamafactory(row: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    return {
        "conversations": [{"from": "human", "value": "<image>" * len(paths) + _last(row, "prompt", "user")}],
        "chosen": {"from": "gpt", "value": _last(row, "chosen", "assistant")},
        "rejected": {"from": "gpt", "value": _last(row, "rejected", "assistant")},
        "images": paths,
    }


def _jsonl(row: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    # NaN and infinite scores are not JSON; null is what a reader of scores can handle
    finite = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
    return {**finite, "images": paths}


_FORMATTERS: dict[str, Callable[[dict[str, Any], list[str]], dict[str, Any]]] = {
    "llava": _llava,
    "seva": _seva,
    "llamafactory": _llamafactory,
    "jsonl": _jsonl,
}


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dataset_name(store: Store, version: str) -> str:
    raw = f"prefgen_{Path(os.path.abspath(store.root)).name}_{version}".lower()
    return re.sub(r"[^a-z0-9_]+", "_", raw)
