"""The same question answered on the corrupted image (SeVa / SENA / POVID): a rejected candidate that is fluent
but less grounded in the image.

Reads ``image``, ``question`` and ``corruption``; writes the ``output`` column (``corrupted_answer`` by default).
The corrupted image is recreated from the row's ``corruption`` description (``apply_corruption``): the same pixels
the ``corrupt`` stage describes, never stored. Everything else is the ``answer`` stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import Drop, Row
from prefgen.stages.generate.answer import Answer, AnswerParams

if TYPE_CHECKING:
    from PIL import Image


class AnswerCorruptedParams(AnswerParams):
    """Answer questions on the image recreated from the `corruption` column."""

    type: Literal["answer_corrupted"] = "answer_corrupted"
    output: str = Field(
        "corrupted_answer", pattern=r"^[a-z][a-z0-9_]*$", description="Column that receives the answer."
    )

    reads: ClassVar = ("image", "question", "corruption")


class AnswerCorrupted(Answer):
    params: AnswerCorruptedParams

    def image_for(self, row: Row, image: Image.Image) -> Image.Image | Drop:
        from prefgen.stages.corrupt.pixels import apply_corruption  # numpy, albumentations: only when it runs

        try:
            return apply_corruption(image, row.get("corruption"))
        except Exception as error:  # a malformed description is a property of the row: drop it, keep the batch
            return Drop(row, "bad_corruption", f"{type(error).__name__}: {error}"[:500])


AnswerCorruptedParams.runtime = AnswerCorrupted
