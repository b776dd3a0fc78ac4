"""The same question answered on the corrupted image (SeVa / SENA / POVID): a rejected candidate that is fluent
but less grounded in the image.

Reads ``image``, ``question`` and ``corruption``; writes the ``output`` column (``corrupted_answer`` by default).
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.answer import AnswerParams


class AnswerCorruptedParams(AnswerParams):
    """Answer questions on the image recreated from the `corruption` column."""

    type: Literal["answer_corrupted"] = "answer_corrupted"
    output: str = Field("corrupted_answer", pattern=r"^[a-z][a-z0-9_]*$", description="Column that receives the answer.")

    reads: ClassVar = ("image", "question", "corruption")
