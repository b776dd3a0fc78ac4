"""A concise description of the image (SENA's "caption first"), optionally a detailed one as well.

Reads ``image``; writes ``caption`` (and ``detailed_caption`` when asked). Greedy, as SENA generates its captions;
every caption of a batch comes from one batched generation.
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.models.prompts import Prompt
from prefgen.stages.base import Item, ModelStage, Row, StageParams, generate

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


class Caption(ModelStage):
    params: CaptionParams

    def run(self, items: list[Item]) -> list[Row]:
        p = self.params
        instructions = {"caption": p.prompt, **({"detailed_caption": p.detailed_prompt} if p.detailed else {})}
        prompts = [Prompt(text, (item.image,)) for text in instructions.values() for item in items]
        texts = iter(generate(self.vlm, prompts, max_new_tokens=p.max_new_tokens))  # greedy: no seeds needed
        found = {column: [next(texts)[0] for _ in items] for column in instructions}
        return [item.update(**{column: found[column][k] for column in instructions}) for k, item in enumerate(items)]


CaptionParams.runtime = Caption
