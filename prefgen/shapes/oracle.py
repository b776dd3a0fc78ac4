"""The ground-truth reward of the shapes world: for each candidate, objects named correctly minus
``hallucination_weight`` x objects named that are not there. Only the shapes world can measure a reward this
exactly; it is the control that shows what a perfect reward model would make of the same candidates.

Reads the ``column`` (an answer or a list) and ``objects`` (the scene's objects, e.g. ``["red circle", ...]``, as
`prefgen shapes scenes` writes them into its manifest); writes ``<column>_oracle``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.shapes.mentions import judge
from prefgen.stages.base import Drop, Row, RowStage, StageParams


class ShapesOracleParams(StageParams):
    """Score shapes-world answers against the scene's ground truth."""

    type: Literal["shapes_oracle"] = "shapes_oracle"
    column: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Answer column to score.")
    hallucination_weight: float = Field(2.0, ge=0.0, description="Cost of one hallucinated object.")

    reads: ClassVar = ("objects",)

    def input_columns(self) -> list[str]:
        return [*self.reads, self.column]

    def output_columns(self) -> list[str]:
        return [f"{self.column}_oracle"]


class ShapesOracle(RowStage):
    params: ShapesOracleParams

    def process_row(self, row: Row) -> Row | Drop:
        objects = row.get("objects")
        if not isinstance(objects, list) or not all(isinstance(o, str) and len(o.split()) == 2 for o in objects):
            return Drop(row, "missing_ground_truth", f"objects: {objects!r}")
        present = {tuple(o.split()) for o in objects}
        cell = row.get(self.params.column)
        answers = cell if isinstance(cell, list) else [cell]
        scores = [None if not isinstance(a, str) else self._score(judge(a, present)) for a in answers]
        return {**row, f"{self.params.column}_oracle": scores if isinstance(cell, list) else scores[0]}

    def _score(self, judged) -> float:
        return float(len(judged.hits) - self.params.hallucination_weight * len(judged.hallucinated))


ShapesOracleParams.runtime = ShapesOracle
