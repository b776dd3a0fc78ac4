"""A concise description of the image (SENA's "caption first"), optionally a detailed one as well.

Reads ``image``; writes ``caption`` (and ``detailed_caption`` when asked). Greedy, as SENA generates its captions;
every caption of a batch comes from one batched generation.
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import Drop, Row, Stage, StageParams

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


class Caption(Stage):
    params: CaptionParams

    def setup(self, models) -> None:
        self.vlm = models.vlm

    def process(self, rows: list[Row]) -> list[Row | Drop]:
        from prefgen.models.prompts import Prompt
        from prefgen.stages._vlm_common import generate, row_image

        p = self.params
        images = [row_image(row) for row in rows]
        out: list[Row | Drop] = [image if isinstance(image, Drop) else dict(row) for row, image in zip(rows, images)]
        ready = [i for i, item in enumerate(out) if not isinstance(item, Drop)]
        instructions = {"caption": p.prompt, **({"detailed_caption": p.detailed_prompt} if p.detailed else {})}
        prompts = [Prompt(text, (images[i],)) for text in instructions.values() for i in ready]
        texts = generate(self.vlm, prompts, max_new_tokens=p.max_new_tokens)  # greedy: no seeds needed
        for k, column in enumerate(instructions):
            for j, i in enumerate(ready):
                out[i][column] = texts[k * len(ready) + j][0]
        return out


CaptionParams.runtime = Caption
