"""What every stage declares (its type name, the columns it reads and writes, the models it needs, a typed params
model) and the small contract its code implements (``Stage.setup`` and ``Stage.process``). The declarations are all
`prefgen validate` needs, so this module imports nothing heavy.

A stage's params model *is* its recipe entry: ``- type: answer`` followed by the params as plain keys. A stage
module declares ``XParams(StageParams)``, implements ``X(Stage)``, and links them with ``XParams.runtime = X``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Base of every recipe model: unknown keys are errors, so typos surface at validation time."""

    model_config = ConfigDict(extra="forbid")


class StageParams(StrictModel):
    """Fields every stage accepts, and the class-level declarations the validator checks."""

    name: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_]{0,47}$",
        description="Label of this stage in logs, caches and rejects; must be unique in the recipe. Defaults to the type.",
    )

    #: Columns the stage needs from the source or an earlier stage.
    reads: ClassVar[tuple[str, ...]] = ()
    #: Columns the stage adds (or replaces).
    writes: ClassVar[tuple[str, ...]] = ()
    #: Entries of the recipe's ``models`` section the stage uses (``vlm``, ``clip``).
    models: ClassVar[tuple[str, ...]] = ()
    #: The code that runs the stage; None while only the declaration exists.
    runtime: ClassVar[type["Stage"] | None] = None

    @classmethod
    def stage_type(cls) -> str:
        return cls.model_fields["type"].default

    @property
    def label(self) -> str:
        return self.name or self.stage_type()

    def input_columns(self) -> list[str]:
        """Columns read; stages whose inputs depend on params override this."""
        return list(self.reads)

    def output_columns(self) -> list[str]:
        """Columns written; stages whose outputs depend on params override this."""
        return list(self.writes)


# ---------------------------------------------------------------------------------------------------- running

#: One row flowing through the stages: column name -> value. ``row_id`` identifies it (unique within a build).
Row = dict


@dataclass(frozen=True)
class Drop:
    """A row a stage removes, with the reason (counted in the manifest and kept in the version's rejects)."""

    row: Row
    reason: str  # short, stable, snake_case: counted by this
    detail: str = ""  # free text for a human: the error message, the offending value...


class Models:
    """The recipe's models, loaded on first use and shared by every stage of a build."""

    def __init__(self, config, base_dir: Path):
        self._config, self._base_dir, self._loaded = config, base_dir, {}

    @property
    def vlm(self):
        if "vlm" not in self._loaded:
            from prefgen.models import VLM

            self._loaded["vlm"] = VLM.load(self._config.vlm, base_dir=self._base_dir)
        return self._loaded["vlm"]

    @property
    def clip(self):
        if "clip" not in self._loaded:
            from prefgen.models import ClipScorer

            self._loaded["clip"] = ClipScorer.load(self._config.clip, base_dir=self._base_dir)
        return self._loaded["clip"]


class Stage:
    """The code that runs a stage: ``setup`` once per worker, then ``process`` on batches of rows.

    ``process`` returns, for its input rows, the rows that go on (updated with the stage's output columns, possibly
    several per input row) and ``Drop``s for the rows it removes. It must not write files, and its results must
    depend only on each row and ``self.seed_for(row)``, never on how rows were batched: that is what makes builds
    reproducible across batch sizes and resumable after a crash.
    """

    def __init__(self, params: StageParams, seed: int):
        self.params = params
        self.seed = seed

    def setup(self, models: Models) -> None:
        """Load what the stage needs (models, tables); called once before the first batch."""

    def process(self, rows: list[Row]) -> list[Row | Drop]:
        raise NotImplementedError

    def seed_for(self, row: Row) -> int:
        """A seed for this row in this stage: the same whatever the batch or shard the row lands in."""
        key = f"{self.seed}:{self.params.label}:{row['row_id']}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1
