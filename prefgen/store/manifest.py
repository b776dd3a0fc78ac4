"""A version's manifest (``versions/<version>.json``): what the rows are, where they came from, how to rebuild them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT = 1


class ShardInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., description="File name under data/<version>/.")
    rows: int = Field(..., ge=0)
    bytes: int = Field(..., ge=0)
    sha256: str


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, description="Hub id.")
    revision: str | None = Field(None, description="Commit sha or tag it was loaded at.")
    path: str | None = Field(None, description="Local path, when loaded from disk.")


class Manifest(BaseModel):
    """Everything known about one published version. Keys added by later prefgen releases are kept, not refused."""

    model_config = ConfigDict(extra="allow")

    format: Literal[1] = Field(FORMAT, description="Manifest format version.")
    version: str
    parent: str | None = Field(
        None,
        description="Version this one was derived or continued from: for a build, the latest version built from a "
        "recipe of the same name (none for a new recipe); for a derive, the newest version its query read.",
    )
    parents: list[str] | None = Field(None, description="Every version a derive's query read, oldest first.")
    created_at: datetime
    message: str = ""
    origin: Literal["build", "derive", "round", "import"] = Field("build", description="What produced the version.")
    rows: int = Field(..., ge=0)
    files: list[ShardInfo]
    columns: list[str] = Field(..., description="Column names of the rows.")
    drops: dict[str, int] = Field(default_factory=dict, description="Rows dropped before publishing, by reason.")
    rejects: int = Field(0, ge=0, description="Rows listed in rejects/<version>.parquet.")
    stats: dict[str, Any] = Field(default_factory=dict, description="Per-stage counts and timings.")
    recipe: dict[str, Any] | None = Field(None, description="The recipe that built the rows, as validated.")
    recipe_fingerprint: str | None = None
    models: dict[str, ModelRef] = Field(default_factory=dict, description="Models by role (vlm, clip).")
    seed: int | None = None
    round: int | None = Field(None, description="Self-improvement round, when built by `prefgen train --rounds`.")
    fingerprints: dict[str, str] = Field(default_factory=dict, description="Stage fingerprints, by stage label.")
    query: str | None = Field(None, description="SQL that derived the rows (origin = derive).")
    code_version: str = Field(..., description="prefgen version that wrote the version.")
