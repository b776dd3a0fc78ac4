"""The stage templates: what ``ModelStage`` and ``RowStage`` do for a stage, shown on a new stage written the way a
contributor would write one (``Shout`` below: one class of params, one class of code, about 40 lines)."""

import io
from types import SimpleNamespace
from typing import ClassVar, Literal

import pytest
from PIL import Image
from pydantic import Field

from prefgen.stages import base
from prefgen.stages.base import Drop, Item, ModelStage, Row, RowStage, StageParams

# ------------------------------------------------------------------------------------------ a stage, as written


class ShoutParams(StageParams):
    """Ask the VLM to repeat each answer louder (a made-up stage: the shape of a real one)."""

    type: Literal["shout"] = "shout"
    column: str = Field("answer", description="Answer column to shout.")

    reads: ClassVar = ("image", "question")
    models: ClassVar = ("vlm",)

    def input_columns(self) -> list[str]:
        return [*self.reads, self.column]

    def output_columns(self) -> list[str]:
        return [f"{self.column}_loud"]


class Shout(ModelStage):
    params: ShoutParams

    def answers_column(self) -> str:
        return self.params.column

    def run(self, items: list[Item]) -> list[Row]:
        texts = [answer for item in items for answer in item.answers if answer is not None]
        loud = iter(self.vlm.shout(texts, [item.image.size for item in items]))
        return [
            item.update(
                **{
                    f"{self.params.column}_loud": item.shaped(
                        [None if answer is None else next(loud) for answer in item.answers]
                    )
                }
            )
            for item in items
        ]


ShoutParams.runtime = Shout

# ------------------------------------------------------------------------------------------ its behaviour


class LoudVLM:
    def __init__(self):
        self.calls = []

    def shout(self, texts, sizes):
        self.calls.append((list(texts), list(sizes)))
        return [text.upper() + "!" for text in texts]


def png(size=(4, 3)) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def row(i, answer="hi", question="Why?", image=None) -> Row:
    return {"row_id": f"r{i}", "image_id": f"i{i}", "image": image or png(), "question": question, "answer": answer}


def shout(rows, seed=0):
    vlm = LoudVLM()
    stage = Shout(ShoutParams(), seed)
    stage.setup(SimpleNamespace(vlm=vlm))
    return stage.process(rows), vlm


def test_the_template_binds_the_declared_models_and_shapes_results_like_the_cell():
    out, vlm = shout([row(0, "one"), row(1, ["two", None, "three"])])
    assert [r["answer_loud"] for r in out] == ["ONE!", ["TWO!", None, "THREE!"]]
    assert vlm.calls == [(["one", "two", "three"], [(4, 3), (4, 3)])]  # one batched call, the images decoded


def test_bad_rows_become_counted_drops_in_input_order_and_never_reach_the_model():
    rows = [
        row(0, "ok"),
        row(1, question="  "),
        row(2, answer=3),
        row(3, image={"bytes": b"not an image"}),
        row(4, answer=[]),
        row(5, "fine"),
    ]
    out, vlm = shout(rows)
    assert [o.reason if isinstance(o, Drop) else o["answer_loud"] for o in out] == [
        "OK!",
        "missing_question",
        "missing_column",
        "undecodable_image",
        "missing_column",
        "FINE!",
    ]
    assert [o.row["row_id"] for o in out if isinstance(o, Drop)] == ["r1", "r2", "r3", "r4"]
    assert vlm.calls[0][0] == ["ok", "fine"]


def test_checks_run_cheapest_first_so_a_bad_cell_is_not_decoded(monkeypatch):
    decoded = []
    monkeypatch.setattr(base, "decode_image", lambda cell: decoded.append(cell) or Image.new("RGB", (2, 2)))
    out, _ = shout([row(0, answer=None), row(1, question=None), row(2, "x")])
    assert [o.reason for o in out[:2]] == ["missing_column", "missing_question"]
    assert len(decoded) == 1  # each ready row's image is decoded once


def test_a_batch_with_no_ready_row_calls_no_model():
    out, vlm = shout([row(0, question=None)])
    assert [o.reason for o in out] == ["missing_question"] and vlm.calls == []


def test_items_carry_the_per_row_seed_whatever_the_batch():
    stage = Shout(ShoutParams(), seed=7)
    alone = stage.item_for(row(3))
    in_batch = [stage.item_for(r) for r in (row(1), row(2), row(3))][-1]
    assert alone.seed == in_batch.seed == stage.seed_for(row(3))
    assert Shout(ShoutParams(), seed=8).item_for(row(3)).seed != alone.seed


class Split(RowStage):
    def process_row(self, row):
        if not row["answer"]:
            return Drop(row, "empty")
        return [{**row, "row_id": f"{row['row_id']}-{k}", "part": part} for k, part in enumerate(row["answer"])]


def test_a_row_stage_may_fan_out_or_drop_and_keeps_order():
    out = Split(ShoutParams(), seed=0).process([row(0, ["a", "b"]), row(1, []), row(2, ["c"])])
    assert [o.reason if isinstance(o, Drop) else o["row_id"] for o in out] == ["r0-0", "r0-1", "empty", "r2-0"]


def test_fan_out_from_a_model_stage_is_flattened_in_order():
    class Twice(Shout):
        def run(self, items):
            return [[item.update(copy=k) for k in range(2)] for item in items]

    stage = Twice(ShoutParams(), 0)
    stage.setup(SimpleNamespace(vlm=None))
    out = stage.process([row(0), row(1, question=""), row(2)])
    assert [(o["row_id"], o["copy"]) if isinstance(o, dict) else o.reason for o in out] == [
        ("r0", 0),
        ("r0", 1),
        "missing_question",
        ("r2", 0),
        ("r2", 1),
    ]


@pytest.mark.parametrize(
    "cell, expected",
    [("a", ["a"]), (["a", None], ["a", None]), ([], None), (None, None), (["a", 1], None), (("a",), ["a"])],
)
def test_the_one_or_many_cell_rule(cell, expected):
    assert base.answer_list(cell) == expected
