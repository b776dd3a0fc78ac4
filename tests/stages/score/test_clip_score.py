"""The `clip_score` stage: per-sentence CLIP scores of an answer column, equal to `ClipScorer` called directly."""

import io
import math
from types import SimpleNamespace

import pytest
from PIL import Image

from prefgen.stages.base import Drop
from prefgen.stages.score.clip_score import ClipScoreParams, ClipScoreStage, split_sentences

ANSWER = "A red square is in the middle. Is it large? It is small!"
ANSWERS = ["A green field.", "Nothing here. Just sky and grass.", ""]


def image(color) -> Image.Image:
    return Image.new("RGB", (40, 30), color)


def row(row_id: str, color=(200, 30, 30), **columns) -> dict:
    buffer = io.BytesIO()
    image(color).save(buffer, format="PNG")
    return {
        "row_id": row_id,
        "image_id": f"img-{row_id}",
        "image": {"bytes": buffer.getvalue(), "path": None},
        **columns,
    }


class Counting:
    """A ClipScorer proxy that counts calls."""

    def __init__(self, scorer):
        self.scorer, self.calls = scorer, 0

    def cosine(self, images, texts, keys=None):
        self.calls += 1
        return self.scorer.cosine(images, texts, keys=keys)


def stage(tiny_clip, **params):
    st = ClipScoreStage(ClipScoreParams(**{"column": "answer", **params}), seed=0)
    clip = Counting(tiny_clip)
    st.setup(SimpleNamespace(clip=clip))
    return st, clip


def direct(tiny_clip, color, sentences, calibrated=True) -> list[float]:
    scores = tiny_clip.score([image(color)] * len(sentences), sentences)
    return [s.calibrated if calibrated else s.cosine for s in scores]


def test_sentences_split_at_end_punctuation_followed_by_space():
    assert split_sentences(ANSWER) == ["A red square is in the middle.", "Is it large?", "It is small!"]
    assert split_sentences("  3.5 metres tall.  ") == ["3.5 metres tall."]
    assert split_sentences("   ") == []


@pytest.mark.parametrize("calibrated", [True, False])
@pytest.mark.parametrize("reduce", ["mean", "min"])
def test_string_column_equals_the_scorer_called_directly(tiny_clip, reduce, calibrated):
    st, clip = stage(tiny_clip, reduce=reduce, calibrated=calibrated)
    [out] = st.process([row("r1", answer=ANSWER)])
    expected = direct(tiny_clip, (200, 30, 30), split_sentences(ANSWER), calibrated)
    assert out["answer_clip_sentences"] == pytest.approx(expected, abs=1e-6)
    combined = min(expected) if reduce == "min" else sum(expected) / len(expected)
    assert out["answer_clip"] == pytest.approx(combined, abs=1e-6)
    assert len(set(expected)) == 3  # the three sentences really are scored apart
    if not calibrated:
        assert all(-1 <= value <= 1 for value in out["answer_clip_sentences"])
    assert out["answer"] == ANSWER and clip.calls == 1


@pytest.mark.parametrize("reduce", ["mean", "min"])
def test_list_column_gives_one_score_per_answer_in_one_call(tiny_clip, reduce):
    st, clip = stage(tiny_clip, reduce=reduce, calibrated=False)
    rows = [row("r1", answer=ANSWERS), row("r2", color=(10, 10, 240), answer=ANSWER)]
    first, second = st.process(rows)
    assert clip.calls == 1  # every sentence of every answer of every row
    per_answer = [direct(tiny_clip, (200, 30, 30), split_sentences(a), calibrated=False) for a in ANSWERS]
    assert len(first["answer_clip_sentences"]) == 3 and first["answer_clip_sentences"][2] == []
    for got, expected in zip(first["answer_clip_sentences"], per_answer):
        assert got == pytest.approx(expected, abs=1e-6)
    reduced = [(min(v) if reduce == "min" else math.fsum(v) / len(v)) if v else None for v in per_answer]
    assert first["answer_clip"][:2] == pytest.approx(reduced[:2], abs=1e-6) and first["answer_clip"][2] is None
    expected = direct(tiny_clip, (10, 10, 240), split_sentences(ANSWER), calibrated=False)
    assert second["answer_clip_sentences"] == pytest.approx(expected, abs=1e-6)


def test_batching_does_not_change_scores_and_bad_rows_drop(tiny_clip):
    st, _ = stage(tiny_clip)
    rows = [
        row("r1", answer=ANSWER),
        row("r2", answer=None),
        row("r3", color=(0, 90, 0), answer=ANSWERS),
        {**row("r4", answer="Text."), "image": {"bytes": b"junk", "path": None}},
    ]
    together = st.process(rows)
    alone = [st.process([r])[0] for r in rows]
    assert [o.reason for o in together if isinstance(o, Drop)] == ["missing_column", "undecodable_image"]
    for a, b in zip(together, alone):
        if not isinstance(a, Drop):
            assert a["answer_clip"] == pytest.approx(b["answer_clip"], abs=1e-4)  # x100: float32 noise


def test_declared_columns_follow_the_column_param():
    params = ClipScoreParams(column="csr_chosen")
    assert params.input_columns() == ["image", "image_id", "csr_chosen"]
    assert params.output_columns() == ["csr_chosen_clip", "csr_chosen_clip_sentences"]
