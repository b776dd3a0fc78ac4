"""SENA answer self-enhancement: given the image, its caption, the question and the current answer, the model
writes an improved answer, which becomes the chosen candidate. Outputs not in the expected form keep the original.

Reads ``image``, ``caption``, ``question`` and the ``input`` column; writes the ``output`` column and
``<output>_improved`` (whether the model's text replaced the answer: SENA's rule keeps the original unless the
output starts with ``answer_prefix``, so this records how many answers were really improved). An ``input`` holding
a list of answers gives lists in both columns. Greedy, as SENA; one batched generation for all answers of a batch.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.models.prompts import Prompt
from prefgen.stages.base import Item, ModelStage, Row, StageParams, fill, generate

ENHANCE_PROMPT = (
    "Given the image, the description of the image, a question about the image and the answer, your task is to "
    "improve the quality of the answer.\nImage Description: {caption}\nQuestion: {question}\n"
    "Current Answer: {answer}\nBased on the information provided in the Image Description, please analyze the "
    "question further and generate a more precise and concise response.\n"
    "Your answer should be formatted as:\nImproved Answer:"
)
# SENA's `improved_prompt_noDes` (data/step2/generate_improve.py), used when the caption is a bare yes/no.
ENHANCE_PROMPT_NO_CAPTION = (
    "Given the image, the description of the image, a question about the image and the answer, your task is to "
    "improve the quality of the answer using a single word or phrase.\nQuestion: {question}\n"
    "Current Answer: {answer}\nPlease analyze the question further and generate a more precise and concise "
    "response.\nYour answer should be formatted as:\nImproved Answer:"
)
# Captions that describe nothing. SENA tests for "Yes"/"yes" only; "no" and an empty caption say as little.
_EMPTY_CAPTIONS = {"", "yes", "no"}


class SelfEnhanceParams(StageParams):
    """Improve answers using the image's caption."""

    type: Literal["self_enhance"] = "self_enhance"
    input: str = Field("answer", pattern=r"^[a-z][a-z0-9_]*$", description="Column holding the answer to improve.")
    output: str = Field("enhanced_answer", pattern=r"^[a-z][a-z0-9_]*$", description="Column for the improved answer.")
    prompt: str = Field(ENHANCE_PROMPT, description="Template with `{caption}`, `{question}` and `{answer}`.")
    prompt_no_caption: str = Field(
        ENHANCE_PROMPT_NO_CAPTION,
        description="Template with `{question}` and `{answer}`, used instead of `prompt` when the caption says "
        "nothing (just yes or no, or empty), as SENA does.",
    )
    answer_prefix: str = Field("Improved Answer:", description="Expected start of the output; stripped when found.")
    max_new_tokens: int = Field(512, ge=1, description="Generation budget per improved answer.")
    keep_sources: list[str] = Field(
        [],
        description="Rows whose question_source is listed keep their answer as it is (`_improved` false). SENA "
        "improves every row; a model never taught to improve descriptions may be spared them with [description].",
    )

    reads: ClassVar = ("image", "caption", "question")
    models: ClassVar = ("vlm",)

    def input_columns(self) -> list[str]:
        return [*self.reads, self.input]

    def output_columns(self) -> list[str]:
        return [self.output, f"{self.output}_improved"]


def says_nothing(caption) -> bool:
    return not isinstance(caption, str) or caption.strip().rstrip(".!").strip().lower() in _EMPTY_CAPTIONS


class SelfEnhance(ModelStage):
    params: SelfEnhanceParams

    def answers_column(self) -> str:
        return self.params.input

    def kept(self, item: Item) -> bool:
        return item.row.get("question_source") in self.params.keep_sources

    def prompts_for(self, item: Item) -> list[Prompt]:
        """One prompt per answer of the row (none for a missing candidate or a kept row)."""
        p = self.params
        if self.kept(item):
            return []
        template, caption = (
            (p.prompt_no_caption, "") if says_nothing(item.row.get("caption")) else (p.prompt, item.row["caption"])
        )
        return [
            Prompt(fill(template, caption=caption, question=item.question, answer=answer), (item.image,))
            for answer in item.answers
            if answer is not None
        ]

    def improve(self, original: str, output: str) -> tuple[str, bool]:
        """SENA's rule: the output replaces the answer only when it starts with the prefix (which is removed)."""
        prefix = self.params.answer_prefix
        text = output.strip()
        improved = text[len(prefix) :].strip() if text.startswith(prefix) else ""
        return (improved, True) if improved else (original, False)

    def run(self, items: list[Item]) -> list[Row]:
        p = self.params
        prompts = [self.prompts_for(item) for item in items]
        texts = iter(generate(self.vlm, [x for group in prompts for x in group], max_new_tokens=p.max_new_tokens))
        out = []
        for item in items:
            results = [
                (answer, False) if answer is None or self.kept(item) else self.improve(answer, next(texts)[0])
                for answer in item.answers
            ]
            out.append(
                item.update(
                    **{
                        p.output: item.shaped([a for a, _ in results]),
                        f"{p.output}_improved": item.shaped([i for _, i in results]),
                    }
                )
            )
        return out


SelfEnhanceParams.runtime = SelfEnhance
