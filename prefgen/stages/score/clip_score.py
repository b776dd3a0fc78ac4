"""Score an answer column against its image with CLIP, sentence by sentence, so any recipe can rank candidates
by image relevance. Each sentence is scored on its own (CLIP reads 77 tokens at most, and CSR scores sentences);
the sentence scores are reduced to one by their mean or minimum.

Reads ``image``, ``image_id`` (the image-embedding cache key) and the ``column``: one answer (a string) or several
(a list of strings). Writes ``<column>_clip``, a float (or a list, one per answer; None for an answer with no text)
and ``<column>_clip_sentences``, the per-sentence scores (a list, or a list of lists). Scores are the calibrated
``max(100 cos, 0)`` or, with ``calibrated: false``, the raw cosine. One CLIP call per batch.
Drop reasons: ``missing_column`` (the cell is neither a string nor a list of strings), ``undecodable_image``.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from prefgen.models.sentences import split_sentences
from prefgen.stages.base import Item, ModelStage, Row, StageParams


class ClipScoreParams(StageParams):
    """CLIP image-text relevance of an answer column."""

    type: Literal["clip_score"] = "clip_score"
    column: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Answer column to score.")
    reduce: Literal["mean", "min"] = Field("mean", description="How sentence scores combine into one.")
    calibrated: bool = Field(True, description="Store max(100 cos, 0) rather than the raw cosine.")

    reads: ClassVar = ("image", "image_id")
    models: ClassVar = ("clip",)

    def input_columns(self) -> list[str]:
        return [*self.reads, self.column]

    def output_columns(self) -> list[str]:
        return [f"{self.column}_clip", f"{self.column}_clip_sentences"]


class ClipScoreStage(ModelStage):
    params: ClipScoreParams

    def answers_column(self) -> str:
        return self.params.column

    def run(self, items: list[Item]) -> list[Row]:
        sentences = [[split_sentences(answer or "") for answer in item.answers] for item in items]
        scores = iter(self._score(items, sentences))
        return [
            self._result(item, [[next(scores) for _ in answer] for answer in per_item])
            for item, per_item in zip(items, sentences)
        ]

    def _score(self, items: list[Item], sentences: list[list[list[str]]]) -> list[float]:
        """Every sentence of every answer of every row, in order, in one CLIP call."""
        images, texts, keys = [], [], []
        for item, per_item in zip(items, sentences):
            for sentence in (s for answer in per_item for s in answer):
                images.append(item.image)
                texts.append(sentence)
                keys.append(str(item.row["image_id"]))
        cosines = self.clip.cosine(images, texts, keys=keys)
        if not self.params.calibrated:
            return [float(c) for c in cosines]
        from prefgen.models.clip import ClipScore  # torch: loaded by then, but not when a recipe is validated

        return [ClipScore.from_cosine(float(c)).calibrated for c in cosines]

    def _result(self, item: Item, per_answer: list[list[float]]) -> Row:
        reduce = min if self.params.reduce == "min" else (lambda values: math.fsum(values) / len(values))
        column = self.params.column
        return item.update(
            **{
                f"{column}_clip": item.shaped([reduce(v) if v else None for v in per_answer]),
                f"{column}_clip_sentences": item.shaped(per_answer),
            }
        )


ClipScoreParams.runtime = ClipScoreStage
