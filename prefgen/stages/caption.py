"""A concise description of the image (SENA's "caption first"), optionally a detailed one as well.

Reads ``image``; writes ``caption`` (and ``detailed_caption`` when asked).
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import StageParams

CONCISE_PROMPT = "Describe the image concisely.\nLook at the image and answer the question in one short sentence."
DETAILED_PROMPT = "Describe the image in detail."


class CaptionParams(StageParams):
    """Describe each image."""

    type: Literal["caption"] = "caption"
    prompt: str = Field(CONCISE_PROMPT, description="Instruction for the concise caption.")
    detailed: bool = Field(False, description="Also write a detailed description to `detailed_caption`.")
    detailed_prompt: str = Field(DETAILED_PROMPT, description="Instruction for the detailed description.")
    max_new_tokens: int = Field(128, ge=1, description="Generation budget per caption.")

    reads: ClassVar = ("image",)
    models: ClassVar = ("vlm",)

    def output_columns(self) -> list[str]:
        return ["caption", "detailed_caption"] if self.detailed else ["caption"]
