"""The shapes world's ground truth as stages: the controls that show what a perfect reward or a perfect answerer
would make of the same rows. Only the shapes world can do this; both read ``objects`` (the scene's objects, e.g.
``["red circle", ...]``, as `prefgen shapes scenes` writes them into its manifest).

- ``shapes_oracle`` scores candidates: objects named correctly minus ``hallucination_weight`` x objects named that
  are not there; reads ``column`` (an answer or a list), writes ``<column>_oracle``.
- ``shapes_answer`` writes the right answer to each row's question (``oracle_answer``): the one word the scene
  settles ("red.", "two.", "yes."), the true description for description rows, and, where the scene
  settles nothing (a question of no known kind, or a colour asked of a shape present in two colours), the
  ``fallback`` column's answer; ``oracle_answer_known`` says which.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.shapes.judge import right_answer
from prefgen.shapes.language import caption, describe
from prefgen.shapes.mentions import judge
from prefgen.shapes.world import scene_of
from prefgen.stages.base import Drop, Row, RowStage, StageParams


class _GroundTruthStage(RowStage):
    """A row stage that needs the scene's objects: rows without them are dropped as ``missing_ground_truth``."""

    def process_row(self, row: Row) -> Row | Drop:
        objects = row.get("objects")
        if not isinstance(objects, list) or not all(isinstance(o, str) and len(o.split()) == 2 for o in objects):
            return Drop(row, "missing_ground_truth", f"objects: {objects!r}")
        return self.with_truth(row, [tuple(o.split()) for o in objects])

    def with_truth(self, row: Row, objects: list[tuple[str, str]]) -> Row:
        """The row with this stage's columns, given the scene's objects as (colour, shape), one per object."""
        raise NotImplementedError


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


class ShapesOracle(_GroundTruthStage):
    params: ShapesOracleParams

    def with_truth(self, row: Row, objects: list[tuple[str, str]]) -> Row:
        present = set(objects)
        cell = row.get(self.params.column)
        answers = cell if isinstance(cell, list) else [cell]
        scores = [None if not isinstance(a, str) else self._score(judge(a, present)) for a in answers]
        return {**row, f"{self.params.column}_oracle": scores if isinstance(cell, list) else scores[0]}

    def _score(self, judged) -> float:
        return float(len(judged.hits) - self.params.hallucination_weight * len(judged.hallucinated))


ShapesOracleParams.runtime = ShapesOracle


class ShapesAnswerParams(StageParams):
    """Write the ground-truth answer to each row's question (the oracle control of SENA's chosen answer)."""

    type: Literal["shapes_answer"] = "shapes_answer"
    description_form: Literal["caption", "sentences"] = Field(
        "caption",
        description="Description rows: one sentence listing every object (as SENA asks them: 'in one "
        "short sentence'), or one sentence per group of objects.",
    )
    output: str = Field("oracle_answer", pattern=r"^[a-z][a-z0-9_]*$", description="Column for the right answer.")
    fallback: str = Field(
        "enhanced_answer",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Column whose answer is kept where the scene settles no single right answer.",
    )

    reads: ClassVar = ("objects", "question")

    def input_columns(self) -> list[str]:
        return [*self.reads, self.fallback]

    def output_columns(self) -> list[str]:
        return [self.output, f"{self.output}_known"]


class ShapesAnswer(_GroundTruthStage):
    params: ShapesAnswerParams

    def with_truth(self, row: Row, objects: list[tuple[str, str]]) -> Row:
        scene, question = scene_of(objects), str(row.get("question") or "")
        if row.get("question_source") == "description":
            right = caption(scene) if self.params.description_form == "caption" else describe(scene)
        else:
            word = right_answer(question, scene)
            right = None if word is None else f"{word}."
        out = self.params.output
        return {
            **row,
            out: right if right is not None else row.get(self.params.fallback),
            f"{out}_known": right is not None,
        }


ShapesAnswerParams.runtime = ShapesAnswer
