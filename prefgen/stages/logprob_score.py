"""The model's own likelihood of each candidate answer (CSR's R_text, a self-reward): the VLM scores the answer
text after the question on the image, one batched teacher-forced pass for every candidate of the batch.

Reads ``image``, ``question`` and the ``column`` (an answer, or a list of sampled answers); writes
``<column>_logp`` (a float, or a list aligned with the answers; None for an empty answer).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import Drop, Row, Stage, StageParams


class LogprobScoreParams(StageParams):
    """Score answers by the model's own log-probability."""

    type: Literal["logprob_score"] = "logprob_score"
    column: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Answer column to score.")
    reduce: Literal["mean", "sum"] = Field(
        "mean", description="Token-mean log-prob (length-neutral) or the sum (the sequence log-probability).")
    prompt_suffix: str = Field("", description="Appended to the question, as the answering stage did.")

    reads: ClassVar = ("image", "question")
    models: ClassVar = ("vlm",)

    def input_columns(self) -> list[str]:
        return [*self.reads, self.column]

    def output_columns(self) -> list[str]:
        return [f"{self.column}_logp"]


class LogprobScore(Stage):
    params: LogprobScoreParams

    def setup(self, models) -> None:
        self.vlm = models.vlm

    def process(self, rows: list[Row]) -> list[Row | Drop]:
        from prefgen.models.prompts import Prompt
        from prefgen.stages._vlm_common import row_image, row_question

        p = self.params
        prompts, texts, owners, out = [], [], [], []
        for i, row in enumerate(rows):
            image, question = row_image(row), row_question(row)
            cell = row.get(p.column)
            answers = cell if isinstance(cell, list) else [cell]
            bad = next((x for x in (image, question) if isinstance(x, Drop)), None)
            if bad is None and not all(a is None or isinstance(a, str) for a in answers):
                bad = Drop(row, "missing_column", f"{p.column}: {cell!r}")
            out.append(bad)
            if bad is not None:
                continue
            prompts.append(Prompt(question + p.prompt_suffix, (image,)))
            for k, answer in enumerate(answers):
                if answer and answer.strip():
                    texts.append(answer)
                    owners.append((i, len(prompts) - 1, k))
        scores = self.vlm.logprobs(prompts, texts, rows=[prompt for _, prompt, _ in owners]) if texts else []
        found: dict[tuple[int, int], float] = {}
        for (i, _, k), score in zip(owners, scores):
            found[(i, k)] = score.logprob_mean if p.reduce == "mean" else score.logprob_sum
        for i, row in enumerate(rows):
            if out[i] is not None:
                continue
            cell = row.get(p.column)
            values = [found.get((i, k)) for k in range(len(cell) if isinstance(cell, list) else 1)]
            out[i] = {**row, f"{p.column}_logp": values if isinstance(cell, list) else values[0]}
        return out


LogprobScoreParams.runtime = LogprobScore
