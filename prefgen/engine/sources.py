"""Reading a recipe's source (an image folder, a manifest, a Hugging Face dataset) as rows.

Two steps, because the runner needs them apart: ``list_items`` runs at every build start, so it only lists (no
decoding, no image hashing) and its keys and fingerprints tell the cache what changed; ``load_rows`` reads one
shard's items and turns each into a row or a ``Drop``. Only a problem with the source as a whole (a missing folder,
an unreadable manifest, a recipe naming a column the data lacks) raises; a bad image never does: it becomes a
``Drop`` with one of ``REASONS``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import random
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from prefgen.core.config import resolve_path
from prefgen.core.errors import PrefgenError
from prefgen.models import images
from prefgen.recipe.sources import HFDatasetSource, ImageFolderSource, Limits, ManifestSource, Source
from prefgen.stages.base import Drop, Row

REASONS = ("empty_file", "unreadable_file", "not_an_image", "truncated_image", "decompression_bomb",
           "duplicate_image", "missing_image", "missing_question", "bad_manifest_line")
# Original bytes are kept only in formats every dataset reader decodes; others (BMP, TIFF...) are stored as PNG.
_KEPT_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp"}
# Opening EPS runs Ghostscript, an interpreter: not on untrusted files that merely carry an image's name.
_UNSAFE_FORMATS = {"EPS"}
# load_dataset infers the format of a folder, not of a single file
_FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".arrow": "arrow"}


@dataclass(frozen=True)
class SourceItem:
    index: int  # position in the full deterministic listing (before sampling)
    key: str  # folder: relative path; manifest: "<row number>:<path>"; hf_dataset: row number
    fingerprint: str  # changes when the item's content may have changed


def list_items(source: Source, limits: Limits, seed: int, base_dir: Path) -> list[SourceItem]:
    """The source's items in a fixed order, cut to ``limits.max_images`` (the first ones, or a seeded sample
    returned in listing order). Raises PrefgenError when the source as a whole is missing or unreadable."""
    lister = {"image_folder": _folder_listing, "manifest": _manifest_listing, "hf_dataset": _dataset_listing}
    keys, fingerprint = lister[source.type](source, Path(base_dir))
    return [SourceItem(i, keys[i], fingerprint(i)) for i in _sample(len(keys), limits, seed)]


def load_rows(source: Source, items: list[SourceItem], base_dir: Path) -> list[Row | Drop]:
    """One row per item (``row_id``, ``image_id``, ``image``, ``image_path``, ``question``, extra columns), or a
    ``Drop`` saying why not. Content already seen earlier in ``items`` is dropped as ``duplicate_image``."""
    reader = {"image_folder": _folder_records, "manifest": _manifest_records, "hf_dataset": _dataset_records}
    records = reader[source.type](source, items, Path(base_dir)) if items else []
    first_seen: dict[str, str] = {}  # image_id -> image_path
    out: list[Row | Drop] = []
    for item, record in zip(items, records):
        try:
            if record.problem:
                raise _Bad(*record.problem)
            data = record.data if record.data is not None else _read_file(record.file)
            if not data:
                raise _Bad("empty_file", "the file is empty (0 bytes)")
            image_id = hashlib.sha256(data).hexdigest()[:16]
            if image_id in first_seen:
                raise _Bad("duplicate_image", f"same content as {first_seen[image_id]}")
            image = _stored_image(data, record.name)
        except _Bad as bad:
            row = {"row_id": _printable(item.key), "image_path": record.image_path}
            out.append(Drop(row, bad.reason, bad.detail))
            continue
        first_seen[image_id] = record.image_path
        out.append({"row_id": image_id, "image_id": image_id, "image": image, "image_path": record.image_path,
                    **record.fields})
    return out


# ---------------------------------------------------------------------------------------------------- one image


class _Bad(Exception):
    """One item's problem; ``load_rows`` turns it into a Drop."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass
class _Record:
    """What a source says about one item, before its image is read."""

    image_path: str  # provenance, as the source names the image (valid UTF-8, so that it can be stored)
    name: str  # file name stored with the image
    file: Path | None = None  # where to read the bytes, unless ``data`` already holds them
    data: bytes | None = None
    fields: dict = field(default_factory=dict)  # question and extra columns
    problem: tuple[str, str] | None = None  # (reason, detail) known without reading the image


def _read_file(path: Path) -> bytes:
    try:
        info = path.stat()  # follows symlinks: a dangling one fails here
        if not stat.S_ISREG(info.st_mode):  # a folder, or a FIFO or device that reading would block on
            raise _Bad("unreadable_file", "is a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file")
        return path.read_bytes()
    except OSError as exc:
        raise _Bad("unreadable_file", exc.strerror or str(exc)) from None


def _stored_image(data: bytes, name: str) -> dict:
    """The image in HF datasets' storage form: the original bytes when they can be used as they are (keeps JPEGs
    compact), else PNG bytes of the upright, RGB, size-capped image."""
    with warnings.catch_warnings():
        # Between MAX_IMAGE_PIXELS and twice that PIL only warns; such an image is as much a bomb as a larger one.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # Per-image notes (corrupt EXIF, palette transparency) would flood a build's log; the image is still fixed.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        try:
            Image.init()  # registers every format plugin, so that Image.OPEN lists them all
            image = Image.open(io.BytesIO(data), formats=[f for f in Image.OPEN if f not in _UNSAFE_FORMATS])
            image.load()  # decoding is lazy: truncation only shows here
            # MPO is a JPEG with extra pictures appended (depth map, preview); JPEG readers show the first one.
            animated = getattr(image, "is_animated", False) and image.format != "MPO"
            prepared = images.prepare_image(image, max_pixels=images.MAX_PIXELS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _Bad("decompression_bomb", str(exc)) from None
        except Image.UnidentifiedImageError:
            raise _Bad("not_an_image", "PIL cannot identify the data as an image") from None
        except Exception as exc:
            reason = "truncated_image" if "truncated" in str(exc).lower() else "not_an_image"
            raise _Bad(reason, f"{type(exc).__name__}: {exc}") from None
    # prepare_image returns its input when it changed nothing (RGB, upright, within the pixel budget).
    if prepared is image and not animated and image.format in _KEPT_FORMATS:
        return {"bytes": data, "path": name if Path(name).suffix else name + _KEPT_FORMATS[image.format]}
    buffer = io.BytesIO()
    prepared.save(buffer, "PNG")
    return {"bytes": buffer.getvalue(), "path": Path(name).stem + ".png"}


# ---------------------------------------------------------------------------------------------------- helpers


def _sample(n: int, limits: Limits, seed: int) -> list[int]:
    k = limits.max_images
    if k is None or k >= n:
        return list(range(n))
    if limits.sampling == "first":
        return list(range(k))
    return sorted(random.Random(seed).sample(range(n), k))


def _stat_fingerprint(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return "unreadable"
    return f"{info.st_size}:{info.st_mtime_ns}"


def _printable(text: str) -> str:
    """File names that are not UTF-8 come back from the OS with surrogates, which parquet cannot store."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_columns(source, columns: set[str], where: str) -> None:
    """A column the recipe names but the data lacks is a recipe error: stop before reading any image."""
    missing = [c for c in _wanted_columns(source) if c not in columns]
    if missing and columns:  # an empty manifest has no columns to check
        raise PrefgenError(f"{where} has no column {', '.join(map(repr, missing))} "
                           f"(it has: {', '.join(sorted(columns))})")
    written = {"row_id", "image_id", "image", "image_path"} | ({"question"} if source.question_column else set())
    clash = written & set(source.extra_columns)
    if clash:
        raise PrefgenError(f"extra_columns {sorted(clash)} would overwrite columns the source writes")


def _wanted_columns(source) -> list[str]:
    return list(dict.fromkeys([source.image_column, *filter(None, [source.question_column]), *source.extra_columns]))


def _fields(record: _Record, source, row: dict) -> None:
    """Copy the question and extra columns of a source row into the record (or note that the question is missing)."""
    if source.question_column:
        question = row.get(source.question_column)
        if not isinstance(question, str) or not question.strip():
            record.problem = ("missing_question", f"{source.question_column!r} is {question!r}")
            return
        record.fields["question"] = question
    record.fields.update({c: row.get(c) for c in source.extra_columns})


# ---------------------------------------------------------------------------------------------------- image folders


def _folder_listing(source: ImageFolderSource, base_dir: Path):
    root = resolve_path(source.path, base_dir)
    if not root.is_dir():
        raise PrefgenError(f"image folder {root} does not exist or is not a folder")
    extensions = {("" if e.startswith(".") else ".") + e.lower() for e in source.extensions}
    top = root.stat()
    keys, pending, visited = [], [(root, "")], {(top.st_dev, top.st_ino)}
    while pending:
        folder, prefix = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            if folder == root:
                raise PrefgenError(f"cannot read image folder {root}: {exc.strerror or exc}") from None
            keys.append(prefix)  # "sub/": listed so that load_rows reports it (unreadable_file) instead of skipping it
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                where = entry.stat() if entry.is_dir() else None  # follows symlinks; a dangling one is a "file"
            except OSError:
                where = None
            if where is None:
                if os.path.splitext(entry.name)[1].lower() in extensions:
                    keys.append(prefix + entry.name)
            elif source.recursive and (where.st_dev, where.st_ino) not in visited:  # symlink loops end here
                visited.add((where.st_dev, where.st_ino))
                pending.append((Path(entry.path), prefix + entry.name + "/"))
    keys.sort()
    return keys, lambda i: _stat_fingerprint(root / keys[i])


def _folder_records(source: ImageFolderSource, items: list[SourceItem], base_dir: Path) -> list[_Record]:
    root = resolve_path(source.path, base_dir)
    return [_Record(_printable(item.key), Path(item.key).name, file=root / item.key) for item in items]


# ---------------------------------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class _Line:
    number: int  # jsonl: line number (from 1, as editors show it); parquet: row index (from 0)
    row: dict | None  # None for a line that is not a JSON object
    digest: str  # of the line or row: an edited question changes the item's fingerprint
    error: str = ""


def _manifest_listing(source: ManifestSource, base_dir: Path):
    path = resolve_path(source.path, base_dir)
    lines = _manifest_lines(source, path)

    def fingerprint(i: int) -> str:
        image = _image_path(lines[i], source)
        return f"{_stat_fingerprint(path.parent / image) if image else 'none'}:{lines[i].digest}"

    return [f"{line.number}:{_image_path(line, source) or ''}" for line in lines], fingerprint


def _image_path(line: _Line, source: ManifestSource) -> str | None:
    image = line.row.get(source.image_column) if line.row else None
    return image if isinstance(image, str) and image else None


def _manifest_records(source: ManifestSource, items: list[SourceItem], base_dir: Path) -> list[_Record]:
    path = resolve_path(source.path, base_dir)
    lines = _manifest_lines(source, path)
    records = []
    for item in items:
        line = lines[item.index] if item.index < len(lines) else None
        if line is None or item.key != f"{line.number}:{_image_path(line, source) or ''}":
            raise PrefgenError(f"manifest {path} changed during the build; start the build again")
        image = _image_path(line, source)
        record = _Record(_printable(image or item.key), Path(image or "").name)
        if line.row is None:
            record.problem = ("bad_manifest_line", line.error)
        elif image is None:
            value = line.row.get(source.image_column)
            record.problem = ("missing_image", f"{source.image_column!r} holds no image path: {value!r}")
        else:
            record.file = path.parent / image
            _fields(record, source, line.row)
        records.append(record)
    return records


def _manifest_lines(source: ManifestSource, path: Path) -> list[_Line]:
    try:
        info = path.stat()
        lines = _read_manifest(path, info.st_size, info.st_mtime_ns)
    except OSError as exc:
        raise PrefgenError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    _check_columns(source, {key for line in lines if line.row for key in line.row}, f"manifest {path}")
    return lines


@functools.lru_cache(maxsize=4)  # load_rows runs once per shard: parse the manifest once per change, not per shard
def _read_manifest(path: Path, size: int, mtime_ns: int) -> list[_Line]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a file that is not parquet
            raise PrefgenError(f"cannot read manifest {path}: {_first_line(exc)}") from None
        return [_Line(i, row, _digest(json.dumps(row, sort_keys=True, default=str)))
                for i, row in enumerate(rows)]
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


# ---------------------------------------------------------------------------------------------------- HF datasets


def _dataset_listing(source: HFDatasetSource, base_dir: Path):
    dataset, _ = _open_dataset(source, base_dir)
    return [str(i) for i in range(len(dataset))], lambda i: f"{dataset._fingerprint}:{i}"


def _dataset_records(source: HFDatasetSource, items: list[SourceItem], base_dir: Path) -> list[_Record]:
    import datasets

    dataset, root = _open_dataset(source, base_dir)
    columns = _wanted_columns(source)
    try:
        chosen = dataset.select([item.index for item in items]).select_columns(columns)
        batch = chosen.cast_column(source.image_column, datasets.Image(decode=False))[:]
    except (ValueError, TypeError, NotImplementedError) as exc:  # pyarrow's cast errors derive from these
        raise PrefgenError(f"column {source.image_column!r} does not hold images: {_first_line(exc)}") from None
    records = []
    for k, item in enumerate(items):
        row = {c: batch[c][k] for c in columns}
        image = row[source.image_column] or {}
        stored = image.get("path")
        record = _Record(item.key, Path(stored).name if stored else f"row{item.key}", data=image.get("bytes"))
        if record.data is None and not stored:
            record.problem = ("missing_image", f"row {item.key} has no image")
        else:
            if record.data is None:  # an image kept as a path: relative to the dataset's folder
                record.file = Path(stored) if root is None else root / stored
            _fields(record, source, row)
        records.append(record)
    return records


def _open_dataset(source: HFDatasetSource, base_dir: Path):
    """The split as a ``datasets.Dataset``, and the folder its relative image paths start from (None if unknown)."""
    import datasets

    root = resolve_path(source.path, base_dir) if source.path is not None else _hub_snapshot(source)
    label = str(root) if source.path is not None else f"{source.id}@{source.revision}"
    if source.path is not None and not root.exists():
        raise PrefgenError(f"dataset path {root} does not exist")
    try:
        if root is None:  # online and not downloaded yet: let datasets fetch what this split needs
            dataset = datasets.load_dataset(source.id, name=source.config, split=source.split,
                                            revision=source.revision)
        elif root.is_file():
            builder = _FILE_BUILDERS.get(root.suffix.lower(), root.suffix.lstrip("."))
            dataset, root = datasets.load_dataset(builder, data_files=str(root), split="train"), root.parent
        else:
            dataset = datasets.load_dataset(str(root), name=source.config, split=source.split)
    except Exception as exc:
        hint = "" if source.path is not None else f"; {_download_hint(source)}"
        raise PrefgenError(f"cannot load dataset {label}: {_first_line(exc)}{hint}") from None
    _check_columns(source, set(dataset.column_names), f"dataset {label}")
    return dataset, root


def _hub_snapshot(source: HFDatasetSource) -> Path | None:
    """The downloaded copy of a Hub dataset at the pinned revision; None when online and not downloaded."""
    import datasets
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(source.id, repo_type="dataset", revision=source.revision,
                                      local_files_only=True))
    except LocalEntryNotFoundError:
        if datasets.config.HF_HUB_OFFLINE:  # datasets would fall back to any cached revision, not the pinned one
            raise PrefgenError(f"dataset {source.id}@{source.revision} is not in the local cache and offline mode "
                               f"is on; {_download_hint(source)}") from None
        return None
    except Exception as exc:
        raise PrefgenError(f"dataset {source.id}@{source.revision}: {_first_line(exc)}; "
                           f"{_download_hint(source)}") from None


def _download_hint(source: HFDatasetSource) -> str:
    return (f"download it first with `hf download {source.id} --repo-type dataset --revision {source.revision}`, "
            "or point `path:` at a local copy")
