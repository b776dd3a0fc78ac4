"""Reading the evaluation inputs users bring (JSON, JSON lines, id lists) with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefgen.core.errors import PrefgenError


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PrefgenError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise PrefgenError(f"{path}: malformed JSON ({exc})") from exc


def read_records(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) of a JSON-lines file, blank lines skipped; a file holding one JSON list of objects is
    read too (its items numbered from 1)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PrefgenError(f"cannot read {path}: {exc}") from exc
    if text.lstrip().startswith("["):
        items = read_json(path)
        numbered = list(enumerate(items, start=1))
    else:
        numbered = [(n, _parse_line(path, n, line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    for number, item in numbered:
        if not isinstance(item, dict):
            raise PrefgenError(f"{path}:{number}: expected a JSON object, got {type(item).__name__}")
        yield number, item


def _parse_line(path, number: int, line: str):
    try:
        return json.loads(line)
    except ValueError as exc:
        raise PrefgenError(f"{path}:{number}: malformed JSON ({exc})") from exc


def read_ids(path: str | Path) -> list[int]:
    """Integer ids, one a line (blank lines and ``#`` comments skipped), as ``prefgen eval chair-sample`` writes."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PrefgenError(f"cannot read {path}: {exc}") from exc
    ids = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            ids.append(int(text))
        except ValueError:
            raise PrefgenError(f"{path}:{number}: not an image id: {text!r}") from None
    return ids
