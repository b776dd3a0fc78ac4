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
import re
from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import Drop, Row, Stage, StageParams

# The same simple rule as select_pairs: a sentence ends at . ! or ? followed by whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


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


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def _answers(cell) -> list[str] | None:
    """The answers of a cell: [text] for a string, the list for a list of strings, None for anything else."""
    if isinstance(cell, str):
        return [cell]
    if isinstance(cell, (list, tuple)) and all(isinstance(answer, str) for answer in cell):
        return list(cell)
    return None


class ClipScoreStage(Stage):
    params: ClipScoreParams

    def setup(self, models) -> None:
        self.clip = models.clip

    def process(self, rows: list[Row]) -> list[Row | Drop]:
        from prefgen.stages._vlm_common import row_image

        out: list[Row | Drop | None] = [None] * len(rows)
        jobs = []  # (position, row, image, sentences per answer)
        for position, row in enumerate(rows):
            answers = _answers(row.get(self.params.column))
            if answers is None:
                out[position] = Drop(row, "missing_column", f"{self.params.column} is not text or a list of texts")
                continue
            image = row_image(row)
            if isinstance(image, Drop):
                out[position] = image
                continue
            jobs.append((position, row, image, [split_sentences(answer) for answer in answers]))
        scores = iter(self._score(jobs))
        for position, row, _, answers in jobs:
            per_answer = [[next(scores) for _ in sentences] for sentences in answers]
            out[position] = self._result(row, per_answer)
        return out

    def _score(self, jobs) -> list[float]:
        """Every sentence of every answer of every row, in order, in one CLIP call."""
        images, texts, keys = [], [], []
        for _, row, image, answers in jobs:
            for sentence in (s for sentences in answers for s in sentences):
                images.append(image)
                texts.append(sentence)
                keys.append(str(row["image_id"]))
        cosines = self.clip.cosine(images, texts, keys=keys)
        if not self.params.calibrated:
            return [float(c) for c in cosines]
        from prefgen.models.clip import ClipScore

        return [ClipScore.from_cosine(float(c)).calibrated for c in cosines]

    def _result(self, row: Row, per_answer: list[list[float]]) -> Row:
        reduce = min if self.params.reduce == "min" else (lambda values: math.fsum(values) / len(values))
        reduced = [reduce(values) if values else None for values in per_answer]
        column = self.params.column
        single = isinstance(row[column], str)
        return {**row, f"{column}_clip": reduced[0] if single else reduced,
                f"{column}_clip_sentences": per_answer[0] if single else per_answer}


ClipScoreParams.runtime = ClipScoreStage
