"""Score an answer column against its image with CLIP, sentence by sentence, so any recipe can rank candidates
by image relevance. Raw cosines and the calibrated ``max(100 cos, 0)`` are both kept.

Reads ``image`` and the ``column``; writes ``<column>_clip`` and ``<column>_clip_sentences``.
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import StageParams


class ClipScoreParams(StageParams):
    """CLIP image-text relevance of an answer column."""

    type: Literal["clip_score"] = "clip_score"
    column: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Answer column to score.")
    reduce: Literal["mean", "min"] = Field("mean", description="How sentence scores combine into one.")
    calibrated: bool = Field(True, description="Store max(100 cos, 0) rather than the raw cosine.")

    reads: ClassVar = ("image",)
    models: ClassVar = ("clip",)

    def input_columns(self) -> list[str]:
        return [*self.reads, self.column]

    def output_columns(self) -> list[str]:
        return [f"{self.column}_clip", f"{self.column}_clip_sentences"]
