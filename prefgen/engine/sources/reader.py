"""Reading a recipe's source (an image folder, a manifest, a Hugging Face dataset) as rows.

Two steps, because the runner needs them apart: ``list_items`` runs at every build start, so it only lists (no
decoding, no image hashing) and its keys and fingerprints tell the cache what changed; ``load_rows`` reads one
shard's items and turns each into a row or a ``Drop``. Only a problem with the source as a whole (a missing folder,
an unreadable manifest, a recipe naming a column the data lacks) raises; a bad image never does: it becomes a
``Drop`` with a stable reason (``empty_file``, ``unreadable_file``, ``not_an_image``, ``truncated_image``,
``decompression_bomb``, ``duplicate_image``, ``missing_image``, ``missing_question``, ``bad_manifest_line``).

This module reads images; how each kind of source lists its items and describes them lives in ``source_folder``,
``source_manifest`` and ``source_dataset``.
"""

from __future__ import annotations

import hashlib
import io
import random
import stat
import warnings
from pathlib import Path

from PIL import Image

from prefgen.engine.sources.common import Listing, SourceItem, printable
from prefgen.engine.sources.dataset import dataset_listing, dataset_records
from prefgen.engine.sources.folder import folder_listing, folder_records
from prefgen.engine.sources.manifest import manifest_listing, manifest_records
from prefgen.models import images
from prefgen.recipe.sources import Limits, Source
from prefgen.stages.base import Drop, Row

# Original bytes are kept only in formats every dataset reader decodes; others (BMP, TIFF...) are stored as PNG.
_KEPT_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp"}
# Opening EPS runs Ghostscript, an interpreter: not on untrusted files that merely carry an image's name.
_UNSAFE_FORMATS = {"EPS"}
_LISTERS = {"image_folder": folder_listing, "manifest": manifest_listing, "hf_dataset": dataset_listing}
_READERS = {"image_folder": folder_records, "manifest": manifest_records, "hf_dataset": dataset_records}


def list_items(source: Source, limits: Limits, seed: int, base_dir: Path) -> list[SourceItem]:
    """The source's items in a fixed order, cut to ``limits.max_images`` (the first ones, or a seeded sample
    returned in listing order). Raises PrefgenError when the source as a whole is missing or unreadable."""
    keys, fingerprint = _listing(source, base_dir)
    return [SourceItem(i, keys[i], fingerprint(i)) for i in _sample(len(keys), limits, seed)]


def count_items(source: Source, base_dir: Path) -> int:
    """How many items the source lists before ``limits`` cut them: what ``build --plan`` reports, from the very
    listing the build uses. Raises PrefgenError like ``list_items``."""
    return len(_listing(source, base_dir)[0])


def load_rows(source: Source, items: list[SourceItem], base_dir: Path) -> list[Row | Drop]:
    """One row per item (``row_id``, ``image_id``, ``image``, ``image_path``, ``question``, extra columns), or a
    ``Drop`` saying why not. Content already seen earlier in ``items`` is dropped as ``duplicate_image``."""
    records = _READERS[source.type](source, items, Path(base_dir)) if items else []
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
            row = {"row_id": printable(item.key), "image_path": record.image_path}
            out.append(Drop(row, bad.reason, bad.detail))
            continue
        first_seen[image_id] = record.image_path
        out.append(
            {
                "row_id": image_id,
                "image_id": image_id,
                "image": image,
                "image_path": record.image_path,
                **record.fields,
            }
        )
    return out


# ---------------------------------------------------------------------------------------------------- one image


class _Bad(Exception):
    """One item's problem; ``load_rows`` turns it into a Drop."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


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


def _listing(source: Source, base_dir: Path) -> Listing:
    return _LISTERS[source.type](source, Path(base_dir))


def _sample(n: int, limits: Limits, seed: int) -> list[int]:
    """Indexes of the items a build reads: all of them, the first ``max_images``, or a seeded sample of that many."""
    k = limits.max_images
    if k is None or k >= n:
        return list(range(n))
    if limits.sampling == "first":
        return list(range(k))
    return sorted(random.Random(seed).sample(range(n), k))
