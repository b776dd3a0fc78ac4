"""What every typed settings model shares, and the one rule for paths written in a recipe or a config file."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base of every recipe and settings model: unknown keys are errors, so typos surface at validation time."""

    model_config = ConfigDict(extra="forbid")


def resolve_path(path: str | Path, base_dir: str | Path | None) -> Path:
    """Where a path written in a file points: ``~`` expanded, then relative paths taken from ``base_dir`` (the
    folder of the file that names them). Absolute paths stay as they are. Every path in a recipe goes through here."""
    expanded = Path(path).expanduser()
    if expanded.is_absolute() or base_dir is None:
        return expanded
    return Path(base_dir) / expanded


def normal_path(path: str | Path, base_dir: str | Path | None) -> Path:
    """``resolve_path`` without ``..`` (``recipes/../out`` is ``out``): how messages, logs and stores name it."""
    return Path(os.path.normpath(resolve_path(path, base_dir)))
