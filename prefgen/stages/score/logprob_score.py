"""The model's own likelihood of each candidate answer (CSR's R_text, a self-reward): the VLM scores the answer
text after the question on the image, one batched teacher-forced pass for every candidate of the batch.

Reads ``image``, ``question`` and the ``column`` (an answer, or a list of sampled answers); writes
``<column>_logp`` (a float, or a list aligned with the answers; None for an empty answer).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.models.prompts import Prompt
from prefgen.stages.base import Item, ModelStage, Row, StageParams


class LogprobScoreParams(StageParams):
    """Score answers by the model's own log-probability."""

    type: Literal["logprob_score"] = "logprob_score"
    column: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Answer column to score.")
    reduce: Literal["mean", "sum"] = Field(
        "mean", description="Token-mean log-prob (length-neutral) or the sum (the sequence log-probability)."
    )
    prompt_suffix: str = Field("", description="Appended to the question, as the answering stage did.")

    reads: ClassVar = ("image", "question")
    models: ClassVar = ("vlm",)

    def input_columns(self) -> list[str]:
        return [*self.reads, self.column]

    def output_columns(self) -> list[str]:
        return [f"{self.column}_logp"]


class LogprobScore(ModelStage):
    params: LogprobScoreParams

    def answers_column(self) -> str:
        return self.params.column

    def run(self, items: list[Item]) -> list[Row]:
        p = self.params
        prompts = [Prompt(item.question + p.prompt_suffix, (item.image,)) for item in items]
        wanted = [
            (i, k)
            for i, item in enumerate(items)
            for k, answer in enumerate(item.answers)
            if answer and answer.strip()
        ]  # an empty or missing answer has no likelihood: None
        texts = [items[i].answers[k] for i, k in wanted]
        scores = self.vlm.logprobs(prompts, texts, rows=[i for i, _ in wanted]) if texts else []
        found = {key: s.logprob_mean if p.reduce == "mean" else s.logprob_sum for key, s in zip(wanted, scores)}
        return [
            item.update(**{f"{p.column}_logp": item.shaped([found.get((i, k)) for k in range(len(item.answers))])})
            for i, item in enumerate(items)
        ]


LogprobScoreParams.runtime = LogprobScore
