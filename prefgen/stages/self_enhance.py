"""SENA answer self-enhancement: given the image, its caption, the question and the current answer, the model
writes an improved answer, which becomes the chosen candidate. Outputs not in the expected form keep the original.

Reads ``image``, ``caption``, ``question`` and the ``input`` column; writes the ``output`` column.
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import StageParams

ENHANCE_PROMPT = (
    "Given the image, the description of the image, a question about the image and the answer, your task is to "
    "improve the quality of the answer.\nImage Description: {caption}\nQuestion: {question}\n"
    "Current Answer: {answer}\nBased on the information provided in the Image Description, please analyze the "
    "question further and generate a more precise and concise response.\n"
    "Your answer should be formatted as:\nImproved Answer:"
)


class SelfEnhanceParams(StageParams):
    """Improve answers using the image's caption."""

    type: Literal["self_enhance"] = "self_enhance"
    input: str = Field("answer", pattern=r"^[a-z][a-z0-9_]*$", description="Column holding the answer to improve.")
    output: str = Field("enhanced_answer", pattern=r"^[a-z][a-z0-9_]*$", description="Column for the improved answer.")
    prompt: str = Field(ENHANCE_PROMPT, description="Template with `{caption}`, `{question}` and `{answer}`.")
    answer_prefix: str = Field("Improved Answer:", description="Expected start of the output; stripped when found.")
    max_new_tokens: int = Field(512, ge=1, description="Generation budget per improved answer.")

    reads: ClassVar = ("image", "caption", "question")
    models: ClassVar = ("vlm",)

    def input_columns(self) -> list[str]:
        return [*self.reads, self.input]

    def output_columns(self) -> list[str]:
        return [self.output]
