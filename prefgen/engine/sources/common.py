"""What every kind of source shares: the listed item, the record a source makes of an item before its image is
read, and the checks and small conversions that image folders, manifests and datasets apply alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prefgen.core.errors import PrefgenError
from prefgen.core.placeholders import strip_placeholders
from prefgen.recipe.sources import source_columns

#: Row key (engine bookkeeping, never stored) counting the ``<image>`` placeholders taken out of a source's question.
PLACEHOLDERS_REMOVED = "placeholders_removed"

#: A source's listing: every item's key in a fixed order, and a function giving the fingerprint of item ``i``.
Listing = tuple[list[str], Callable[[int], str]]


@dataclass(frozen=True)
class SourceItem:
    index: int  # position in the full deterministic listing (before sampling)
    key: str  # folder: relative path; manifest: "<row number>:<path>"; hf_dataset: row number
    fingerprint: str  # changes when the item's content may have changed


@dataclass
class Record:
    """What a source says about one item, before its image is read."""

    image_path: str  # provenance, as the source names the image (valid UTF-8, so that it can be stored)
    name: str  # file name stored with the image
    file: Path | None = None  # where to read the bytes, unless ``data`` already holds them
    data: bytes | None = None
    fields: dict = field(default_factory=dict)  # question and extra columns
    problem: tuple[str, str] | None = None  # (reason, detail) known without reading the image


def stat_fingerprint(path: Path) -> str:
    """Size and modification time: enough to notice an edited file without reading it at every build start."""
    try:
        info = path.stat()
    except OSError:
        return "unreadable"
    return f"{info.st_size}:{info.st_mtime_ns}"


def printable(text: str) -> str:
    """File names that are not UTF-8 come back from the OS with surrogates, which parquet cannot store."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def first_line(exc: Exception) -> str:
    """Library errors can span many lines; a one-line error message keeps only the first."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_columns(source, columns: set[str], where: str) -> None:
    """A column the recipe names but the data lacks is a recipe error: stop before reading any image."""
    missing = [c for c in wanted_columns(source) if c not in columns]
    if missing and columns:  # an empty manifest has no columns to check
        raise PrefgenError(
            f"{where} has no column {', '.join(map(repr, missing))} (it has: {', '.join(sorted(columns))})"
        )
    written = {"row_id", *source_columns(source.question_column)}
    clash = written & set(source.extra_columns)
    if clash:
        raise PrefgenError(f"extra_columns {sorted(clash)} would overwrite columns the source writes")


def wanted_columns(source) -> list[str]:
    """The columns a manifest or dataset must have: the image, the question if one is named, the extra columns."""
    return list(dict.fromkeys([source.image_column, *filter(None, [source.question_column]), *source.extra_columns]))


def copy_fields(record: Record, source, row: dict) -> None:
    """Copy the question and extra columns of a source row into the record (or note that the question is missing)."""
    if source.question_column:
        question = row.get(source.question_column)
        if not isinstance(question, str) or not question.strip():
            record.problem = ("missing_question", f"{source.question_column!r} is {question!r}")
            return
        fields = question_fields(question)
        if not fields["question"]:
            record.problem = ("missing_question", f"{source.question_column!r} holds only a placeholder: {question!r}")
            return
        record.fields.update(fields)
    record.fields.update({c: row.get(c) for c in source.extra_columns})


def question_fields(question: str) -> dict:
    """A source's question as rows carry it: without LLaVA-style ``<image>`` placeholders (the image travels in its
    own column; a placeholder left in the text is one image too many for the model's processor), and how many were
    taken out, for the build's counted note."""
    text, removed = strip_placeholders(question)
    return {"question": text, PLACEHOLDERS_REMOVED: removed}
