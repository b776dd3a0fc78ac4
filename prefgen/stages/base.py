"""What every stage declares: its type name, the columns it reads and writes, the models it needs, and a typed
params model. The declarations are all `prefgen validate` needs, so this module imports nothing heavy.

A stage's params model *is* its recipe entry: ``- type: answer`` followed by the params as plain keys.
"""

from __future__ import annotations

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
