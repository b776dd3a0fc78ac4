"""Cheap, deterministic stages for testing the runner without models. `register()` adds them to the catalogue."""

import random
import time
from typing import ClassVar, Literal

from pydantic import Field

from prefgen.recipe.catalogue import STAGES
from prefgen.stages.base import Drop, Stage, StageParams


class ToyQuestionParams(StageParams):
    """Ask one fixed question per image (and a second one when `two` is set)."""

    type: Literal["toy_question"] = "toy_question"
    two: bool = False
    reads: ClassVar = ("image_id",)
    writes: ClassVar = ("question",)


class ToyQuestion(Stage):
    def process(self, rows):
        out = []
        for row in rows:
            out.append({**row, "row_id": f"{row['row_id']}-0", "question": f"What is in {row['image_id'][:6]}?"})
            if self.params.two:
                out.append({**row, "row_id": f"{row['row_id']}-1", "question": f"Where is {row['image_id'][:6]}?"})
        return out


class ToyAnswerParams(StageParams):
    """Two candidate answers and seeded scores; can fail or sleep on purpose."""

    type: Literal["toy_answer"] = "toy_answer"
    suffix: str = "!"
    fail_on: str | None = Field(None, description="Raise for rows whose image_id starts with this.")
    fail_all: bool = False
    sleep: float = 0.0
    reads: ClassVar = ("image", "question")
    writes: ClassVar = ("good", "bad", "good_score", "bad_score")


class ToyAnswer(Stage):
    def process(self, rows):
        out = []
        for row in rows:
            if self.params.fail_all or (self.params.fail_on and row["image_id"].startswith(self.params.fail_on)):
                raise ValueError(f"cannot answer {row['image_id']}")
            time.sleep(self.params.sleep)
            rng = random.Random(self.seed_for(row))
            out.append(
                {
                    **row,
                    "good": row["question"].upper() + self.params.suffix,
                    "bad": row["question"].lower(),
                    "good_score": 1 + rng.random(),
                    "bad_score": rng.random(),
                }
            )
        return out


class ToyPairsParams(StageParams):
    """Rows in the output contract from `good`/`bad`; drops pairs with a low margin."""

    type: Literal["toy_pairs"] = "toy_pairs"
    min_margin: float = 0.0
    reads: ClassVar = ("image", "question", "good", "bad", "good_score", "bad_score")
    writes: ClassVar = (
        "id",
        "images",
        "prompt",
        "chosen",
        "rejected",
        "chosen_score",
        "rejected_score",
        "margin",
        "method",
    )


class ToyPairs(Stage):
    def process(self, rows):
        out = []
        for row in rows:
            margin = row["good_score"] - row["bad_score"]
            if margin < self.params.min_margin:
                out.append(Drop(row, "low_margin", f"{margin:.3f}"))
                continue
            out.append(
                {
                    **row,
                    "id": row["row_id"],
                    "images": [row["image"]],
                    "prompt": [{"role": "user", "content": row["question"]}],
                    "chosen": [{"role": "assistant", "content": row["good"]}],
                    "rejected": [{"role": "assistant", "content": row["bad"]}],
                    "chosen_score": row["good_score"],
                    "rejected_score": row["bad_score"],
                    "margin": margin,
                    "method": "toy",
                }
            )
        return out


ToyQuestionParams.runtime = ToyQuestion
ToyAnswerParams.runtime = ToyAnswer
ToyPairsParams.runtime = ToyPairs
TOY_STAGES = {cls.stage_type(): cls for cls in (ToyQuestionParams, ToyAnswerParams, ToyPairsParams)}


def register() -> None:
    STAGES.update(TOY_STAGES)
