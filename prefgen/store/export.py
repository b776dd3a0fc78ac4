"""``prefgen export``: write a version in the JSON formats other trainers read, with its images as files beside it.

    <out>/images/<image_id or sha256[:16]>.<png|jpg|webp|...>   each distinct image once
    <out>/data.json           llava, seva, llamafactory: one JSON list
    <out>/data.jsonl          swift, jsonl: one row per line
    <out>/dataset_info.json   llamafactory: registers data.json as sharegpt ranking data

Formats:
    llava          what CSR's construct.py writes: LLaVA ``conversations`` (chosen) and ``rejected_conversations``
    seva           SeVa/SENA: ``id``, ``question``, ``chosen``, ``reject``, ``image``
    llamafactory   LLaMA-Factory sharegpt ranking data (``llamafactory-cli train`` with ``stage: dpo``)
    swift          ms-swift's RLHF data: ``messages`` (user, then the chosen answer), ``rejected_response``,
                   ``images`` (``swift rlhf --rlhf_type dpo --dataset <out>/data.jsonl``)
    jsonl          every column; ``images`` becomes the list of image paths

Images and placeholders: llamafactory and swift put one ``<image>`` per image at the start of the user text, in
the order of ``images`` (both trainers' multi-image convention); llava starts the question with ``<image>\n``;
seva writes the bare question. Any ``<image>`` already in a text is taken out first (a warning counts the rows):
a trainer pairs the n-th placeholder with the n-th image, so a stray one would move images onto the wrong turn or
stop the row. llava and seva hold one image per pair: a row with several is refused, naming the formats that
keep them all.

A version is exported only when ``prefgen verify`` finds nothing wrong with it (the sha256 of every data file
included). Image paths in the data are relative to ``out``. Rows are read batch by batch with pyarrow and written
as they are read, so memory stays at one batch whatever the size of the version. The export is built in a hidden
sibling folder and renamed to ``out`` at the end: a failure leaves no half-written export behind.
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

from prefgen.core.errors import PrefgenError, StoreError
from prefgen.core.fs import folder_beside
from prefgen.core.placeholders import IMAGE_PLACEHOLDER, strip_placeholders
from prefgen.store.folder import Store
from prefgen.store.verify import verify_store

FORMATS = ("llava", "seva", "llamafactory", "swift", "jsonl")
_ONE_IMAGE = ("llava", "seva")  # formats with one image field per pair
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
    _refuse_damage(store, manifest.version)
    sources = store.data_files(manifest.version)
    with folder_beside(out) as tmp:  # an empty `out` is replaced (checked above)
        rows, names = _write(sources, fmt, tmp, _dataset_name(store, manifest.version))
    return ExportResult(version=manifest.version, rows=rows, files=[out / name for name in names])


def _refuse_damage(store: Store, version: str) -> None:
    """Stop with ``prefgen verify``'s first finding about ``version``: a trainer must not learn from bytes that
    changed after they were published, even where they still decode."""
    problems = verify_store(store, version).problems
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StoreError(f"version {version} is damaged: {problems[0]}{more}; run `prefgen verify {store.root}`")


def _write(sources: list[Path], fmt: str, folder: Path, dataset_name: str) -> tuple[int, list[str]]:
    (folder / "images").mkdir()
    to_record, one_array = _FORMATTERS[fmt], fmt in ("llava", "seva", "llamafactory")
    data_name = "data.json" if one_array else "data.jsonl"
    rows = stray = 0
    with open(folder / data_name, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("[" if one_array else "")
        for row in _rows(sources, every_column=fmt == "jsonl"):
            if fmt in _ONE_IMAGE and len(row["images"] or []) > 1:
                raise PrefgenError(
                    f"row {row['id']!r} has {len(row['images'])} images and the {fmt} format holds one per pair; "
                    "export as llamafactory, swift or jsonl, which keep every image"
                )
            paths = [_write_image(folder / "images", image, row) for image in row["images"] or []]
            texts = _Texts(row) if fmt != "jsonl" else None  # jsonl keeps every column as it is stored
            text = json.dumps(to_record(row, paths, texts), ensure_ascii=False, default=_json_default)
            if one_array:  # streamed item by item, so a large version is never held in memory
                fh.write(("\n" if rows == 0 else ",\n") + text)
            else:
                fh.write(text + "\n")
            rows += 1
            stray += texts is not None and texts.stray > 0
        fh.write("\n]\n" if one_array else "")
    if stray:
        log.warning(
            "%d rows had %s in their texts; it was taken out, and the format places one per image itself",
            stray,
            IMAGE_PLACEHOLDER,
        )
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


class _Texts:
    """A row's question and answers as a trainer may read them: without ``<image>`` placeholders (``stray`` counts
    those taken out), so that the format alone decides where the images go."""

    def __init__(self, row: dict[str, Any]):
        self.stray = 0
        self.question = self._clean(_last(row, "prompt", "user"))
        self.chosen = self._clean(_last(row, "chosen", "assistant"))
        self.rejected = self._clean(_last(row, "rejected", "assistant"))

    def _clean(self, text: str) -> str:
        text, removed = strip_placeholders(text)
        self.stray += removed
        return text


def _llava(row: dict[str, Any], paths: list[str], texts: _Texts) -> dict[str, Any]:
    human = {"from": "human", "value": (IMAGE_PLACEHOLDER + "\n" if paths else "") + texts.question}
    return {
        "id": row["id"],
        **({"image": paths[0]} if paths else {}),
        "conversations": [human, {"from": "gpt", "value": texts.chosen}],
        "rejected_conversations": [human, {"from": "gpt", "value": texts.rejected}],
    }


def _seva(row: dict[str, Any], paths: list[str], texts: _Texts) -> dict[str, Any]:
    return {
        "id": row["id"],
        "question": texts.question,
        "chosen": texts.chosen,
        "reject": texts.rejected,
        "image": paths[0] if paths else None,
    }


def _llamafactory(row: dict[str, Any], paths: list[str], texts: _Texts) -> dict[str, Any]:
    return {
        "conversations": [{"from": "human", "value": IMAGE_PLACEHOLDER * len(paths) + texts.question}],
        "chosen": {"from": "gpt", "value": texts.chosen},
        "rejected": {"from": "gpt", "value": texts.rejected},
        "images": paths,
    }


def _swift(row: dict[str, Any], paths: list[str], texts: _Texts) -> dict[str, Any]:
    # ms-swift's RLHF rows: the chosen conversation in `messages`, the rejected answer in `rejected_response`
    # (it shares the prompt and the images); `id` is an extra column swift ignores and keeps the pair traceable
    return {
        "messages": [
            {"role": "user", "content": IMAGE_PLACEHOLDER * len(paths) + texts.question},
            {"role": "assistant", "content": texts.chosen},
        ],
        "rejected_response": texts.rejected,
        "images": paths,
        "id": row["id"],
    }


def _jsonl(row: dict[str, Any], paths: list[str], texts: None) -> dict[str, Any]:
    # NaN and infinite scores are not JSON; null is what a reader of scores can handle
    finite = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
    return {**finite, "images": paths}


_FORMATTERS: dict[str, Callable[[dict[str, Any], list[str], Any], dict[str, Any]]] = {
    "llava": _llava,
    "seva": _seva,
    "llamafactory": _llamafactory,
    "swift": _swift,
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
