"""Rows as the store writes them: Arrow tables in the output contract's features, with every image's bytes inside,
and the schema of the rows a build rejected."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from prefgen.core.contract import REQUIRED_COLUMNS, contract_features
from prefgen.core.errors import StoreError

if TYPE_CHECKING:
    import pyarrow as pa


def REJECTS_SCHEMA():  # noqa: N802 - a constant that needs pyarrow, built when first used
    import pyarrow as pa

    return pa.schema(
        [("row_id", pa.string()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string())]
    )


def rows_to_table(rows: Iterable[dict]) -> "pa.Table":
    """Encode rows (PIL images, bytes or paths in ``images``) as an Arrow table with the contract's features.

    Columns outside the contract get the types datasets would infer (PIL images become ``Image()``). The table is
    built directly rather than through ``Dataset.from_list``, which fingerprints every table by pickling it (half of
    a cheap build's time went there).
    """
    import pyarrow as pa
    from datasets import Features
    from datasets.arrow_writer import TypedSequence

    rows = [_embed_images(row) for row in rows]
    contract = contract_features()
    names = list(rows[0]) if rows else list(REQUIRED_COLUMNS)
    columns = {k: [row.get(k) for row in rows] for k in names}
    features = Features(
        {k: contract[k] if k in contract else TypedSequence(columns[k]).get_inferred_type() for k in names}
    )
    encoded = features.encode_batch(columns)
    if "images" in encoded:
        encoded["images"] = [
            None if images is None else [_image_cell(image) for image in images] for images in columns["images"]
        ]
    return pa.Table.from_pydict(encoded, schema=features.arrow_schema)


def _image_cell(image) -> dict:
    """An image as stored: always its bytes. (datasets' encoder keeps only the path of a ``{"bytes", "path"}`` image
    whose path names a file in the current folder, which would make the store depend on that file.)"""
    from datasets import Image

    if isinstance(image, dict) and image.get("bytes") is not None:
        return {"bytes": image["bytes"], "path": image.get("path")}
    cell = Image().encode_example(image)
    if cell.get("bytes") is None and cell.get("path"):
        cell = {"bytes": Path(cell["path"]).read_bytes(), "path": Path(cell["path"]).name}
    return cell


def _embed_images(row: dict) -> dict:
    """Images given as file paths are read in, so a store never depends on files outside itself."""
    images = row.get("images")
    if not images or not any(isinstance(im, (str, os.PathLike)) for im in images):
        return row
    embedded = []
    for image in images:
        if isinstance(image, (str, os.PathLike)):
            try:
                image = {"bytes": Path(image).read_bytes(), "path": Path(image).name}
            except OSError as exc:
                raise StoreError(f"cannot read image {image}: {exc.strerror}") from None
        embedded.append(image)
    return {**row, "images": embedded}
