"""Answer each question on the clean image: the usual source of chosen candidates.

Reads ``image`` and ``question``; writes the ``output`` column (``answer`` by default): one answer, or a list of
``n`` sampled answers. Greedy with temperature 0; otherwise sampled from the row's seed, so an answer does not
depend on the batch it was generated in. A stop string and whatever follows it are cut from the answer.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from prefgen.models.prompts import Prompt
from prefgen.stages.base import Item, ModelStage, Row, StageParams, generate


class AnswerParams(StageParams):
    """Answer questions with the VLM, greedy or sampled."""

    type: Literal["answer"] = "answer"
    output: str = Field("answer", pattern=r"^[a-z][a-z0-9_]*$", description="Column that receives the answer.")
    prompt_suffix: str = Field("", description="Appended to the question (SENA uses a short-answer instruction).")
    description_suffix: str | None = Field(
        None,
        description="Appended instead of `prompt_suffix` to description rows (question_source "
        "'description'); SENA asks those for one short sentence. None: `prompt_suffix` for every row.",
    )
    prompt_output: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Also write the prompt as asked (the question and its "
        "suffix) to this column, so that `select_pairs` can train on the prompt the answers came from.",
    )
    n: int = Field(1, ge=1, le=64, description="Answers per question; with n > 1 the column holds a list.")
    temperature: float = Field(0.0, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass when sampling.")
    max_new_tokens: int = Field(512, ge=1, description="Generation budget per answer.")
    stop: list[str] = Field([], description="Extra stop strings.")

    reads: ClassVar = ("image", "question")
    models: ClassVar = ("vlm",)

    @model_validator(mode="after")
    def _greedy_gives_one_answer(self):
        # caught here, at `prefgen validate`, rather than by the model runtime after the models have loaded
        if self.temperature == 0 and self.n > 1:
            raise ValueError(
                f"n = {self.n} needs sampling: greedy decoding (temperature 0) would give {self.n} "
                "identical answers; set temperature > 0 (e.g. 1.0) or n: 1"
            )
        return self

    def output_columns(self) -> list[str]:
        return [self.output, *([self.prompt_output] if self.prompt_output else [])]


class Answer(ModelStage):
    params: AnswerParams

    def run(self, items: list[Item]) -> list[Row]:
        p = self.params
        prompts = [Prompt(item.question + self.suffix(item.row), (item.image,)) for item in items]
        answers = generate(
            self.vlm,
            prompts,
            [item.seed for item in items],
            n=p.n,
            max_new_tokens=p.max_new_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            stop=p.stop,
        )
        asked = (lambda prompt: {p.prompt_output: prompt.text}) if p.prompt_output else (lambda prompt: {})
        return [
            item.update(**{p.output: texts if p.n > 1 else texts[0]}, **asked(prompt))
            for item, prompt, texts in zip(items, prompts, answers)
        ]

    def suffix(self, row: Row) -> str:
        p = self.params
        if p.description_suffix is not None and row.get("question_source") == "description":
            return p.description_suffix
        return p.prompt_suffix


AnswerParams.runtime = Answer
