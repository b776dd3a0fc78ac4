"""Choose chosen/rejected per prompt from candidate columns and scores, apply SENA's filters, a margin threshold
and a length-ratio guard, and write rows in the output contract (trl's VLM preference format plus provenance).

Reads ``image``, ``image_id``, ``question`` and the candidate (and score) columns; writes the contract columns.
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import StageParams

CONTRACT_COLUMNS = ("images", "prompt", "chosen", "rejected", "chosen_score", "rejected_score", "margin", "method")


class SelectPairsParams(StageParams):
    """Turn candidates into filtered preference pairs."""

    type: Literal["select_pairs"] = "select_pairs"
    chosen: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Column with the chosen candidate.")
    rejected: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Column with the rejected candidate.")
    chosen_score: str | None = Field(None, description="Column with the chosen candidate's score, if any.")
    rejected_score: str | None = Field(None, description="Column with the rejected candidate's score, if any.")
    method: str = Field(..., description="Provenance label written to the `method` column (e.g. csr, sena).")
    min_margin: float | None = Field(None, description="Drop pairs whose score margin is below this.")
    max_length_ratio: float | None = Field(None, gt=1.0, description="Drop pairs whose answers' lengths differ more.")
    drop_duplicate_sentences: bool = Field(True, description="Drop answers that repeat a sentence.")
    drop_yes_no: bool = Field(True, description="Drop bare 'Yes' / 'No' answers.")
    drop_rejected_in_chosen: bool = Field(True, description="Drop pairs whose rejected text is inside the chosen.")
    max_non_alnum_fraction: float = Field(0.5, ge=0.0, le=1.0, description="Drop answers with more symbols than this.")
    max_words: int | None = Field(None, ge=1, description="Drop answers with more words (SENA uses 30).")

    reads: ClassVar = ("image", "image_id", "question")
    writes: ClassVar = CONTRACT_COLUMNS

    def input_columns(self) -> list[str]:
        extra = [c for c in (self.chosen_score, self.rejected_score) if c]
        return [*self.reads, self.chosen, self.rejected, *extra]
