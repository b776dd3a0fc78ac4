"""Hugging Face datasets as a source: a local dataset folder or data file, or a Hub dataset pinned to a revision and
read from the local cache (downloaded only when online and not there yet, never silently at another revision)."""

from __future__ import annotations

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
    wanted_columns,
)
from prefgen.recipe.sources import HFDatasetSource

# load_dataset infers the format of a folder, not of a single file
_FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".arrow": "arrow"}


def dataset_listing(source: HFDatasetSource, base_dir: Path) -> Listing:
    """Row numbers; the dataset's own fingerprint stands for the content of every row."""
    dataset, _ = _open_dataset(source, base_dir)
    return [str(i) for i in range(len(dataset))], lambda i: f"{dataset._fingerprint}:{i}"


def dataset_records(source: HFDatasetSource, items: list[SourceItem], base_dir: Path) -> list[Record]:
    """One record per item, reading only the wanted columns of the chosen rows, images left undecoded."""
    import datasets

    dataset, root = _open_dataset(source, base_dir)
    columns = wanted_columns(source)
    try:
        chosen = dataset.select([item.index for item in items]).select_columns(columns)
        batch = chosen.cast_column(source.image_column, datasets.Image(decode=False))[:]
    except (ValueError, TypeError, NotImplementedError) as exc:  # pyarrow's cast errors derive from these
        raise PrefgenError(f"column {source.image_column!r} does not hold images: {first_line(exc)}") from None
    records = []
    for k, item in enumerate(items):
        row = {c: batch[c][k] for c in columns}
        image = row[source.image_column] or {}
        stored = image.get("path")
        record = Record(item.key, Path(stored).name if stored else f"row{item.key}", data=image.get("bytes"))
        if record.data is None and not stored:
            record.problem = ("missing_image", f"row {item.key} has no image")
        else:
            if record.data is None:  # an image kept as a path: relative to the dataset's folder
                record.file = Path(stored) if root is None else root / stored
            copy_fields(record, source, row)
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
            dataset = datasets.load_dataset(
                source.id, name=source.config, split=source.split, revision=source.revision
            )
        elif root.is_file():
            builder = _FILE_BUILDERS.get(root.suffix.lower(), root.suffix.lstrip("."))
            dataset, root = datasets.load_dataset(builder, data_files=str(root), split="train"), root.parent
        else:
            dataset = datasets.load_dataset(str(root), name=source.config, split=source.split)
    except Exception as exc:
        hint = "" if source.path is not None else f"; {_download_hint(source)}"
        raise PrefgenError(f"cannot load dataset {label}: {first_line(exc)}{hint}") from None
    check_columns(source, set(dataset.column_names), f"dataset {label}")
    return dataset, root


def _hub_snapshot(source: HFDatasetSource) -> Path | None:
    """The downloaded copy of a Hub dataset at the pinned revision; None when online and not downloaded."""
    import datasets
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(source.id, repo_type="dataset", revision=source.revision, local_files_only=True))
    except LocalEntryNotFoundError:
        if datasets.config.HF_HUB_OFFLINE:  # datasets would fall back to any cached revision, not the pinned one
            raise PrefgenError(
                f"dataset {source.id}@{source.revision} is not in the local cache and offline mode "
                f"is on; {_download_hint(source)}"
            ) from None
        return None
    except Exception as exc:
        raise PrefgenError(
            f"dataset {source.id}@{source.revision}: {first_line(exc)}; {_download_hint(source)}"
        ) from None


def _download_hint(source: HFDatasetSource) -> str:
    return (
        f"download it first with `hf download {source.id} --repo-type dataset --revision {source.revision}`, "
        "or point `path:` at a local copy"
    )
