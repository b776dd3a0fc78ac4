"""Answer each question on the clean image: the usual source of chosen candidates.

Reads ``image`` and ``question``; writes the ``output`` column (``answer`` by default).
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import StageParams

SHORT_ANSWER_SUFFIX = "\nLook at the image and answer the question using a single word or phrase."


class AnswerParams(StageParams):
    """Answer questions with the VLM, greedy or sampled."""

    type: Literal["answer"] = "answer"
    output: str = Field("answer", pattern=r"^[a-z][a-z0-9_]*$", description="Column that receives the answer.")
    prompt_suffix: str = Field("", description="Appended to the question (SENA uses a short-answer instruction).")
    n: int = Field(1, ge=1, le=64, description="Answers per question; with n > 1 the column holds a list.")
    temperature: float = Field(0.0, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass when sampling.")
    max_new_tokens: int = Field(512, ge=1, description="Generation budget per answer.")
    stop: list[str] = Field([], description="Extra stop strings.")

    reads: ClassVar = ("image", "question")
    models: ClassVar = ("vlm",)

    def output_columns(self) -> list[str]:
        return [self.output]
