"""Scoring stages for reward controls: the model's own log-probs, weighted reward mixes, the shapes-world oracle."""

import io
from types import SimpleNamespace

import pytest
from PIL import Image

from prefgen.shapes.oracle import ShapesOracle, ShapesOracleParams
from prefgen.stages.base import Drop
from prefgen.stages.score.logprob_score import LogprobScore, LogprobScoreParams
from prefgen.stages.score.reward_mix import RewardMix, RewardMixParams, zscore


def image_cell(colour):
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, "PNG")
    return {"bytes": buffer.getvalue(), "path": "x.png"}


def test_logprob_score_equals_the_runtime_for_strings_and_lists(tiny_llava):
    from prefgen.models import Prompt
    from prefgen.models.images import decode_image

    rows = [
        {"row_id": "a", "image": image_cell("red"), "question": "What is it?", "answers": ["A red box.", "", "Hm"]},
        {"row_id": "b", "image": image_cell("blue"), "question": "Colour?", "answers": "Blue."},
    ]
    stage = LogprobScore(LogprobScoreParams(column="answers"), seed=0)
    stage.setup(SimpleNamespace(vlm=tiny_llava))
    one, two = stage.process(rows)
    direct = tiny_llava.logprobs(
        [Prompt("What is it?", decode_image(rows[0]["image"]))], ["A red box.", "Hm"], rows=[0, 0]
    )
    assert one["answers_logp"][0] == pytest.approx(direct[0].logprob_mean, abs=1e-5)
    assert one["answers_logp"][1] is None and one["answers_logp"][2] == pytest.approx(direct[1].logprob_mean, abs=1e-5)
    [alone] = tiny_llava.logprobs([Prompt("Colour?", decode_image(rows[1]["image"]))], ["Blue."])
    assert two["answers_logp"] == pytest.approx(alone.logprob_mean, abs=1e-5)
    summed = LogprobScore(LogprobScoreParams(column="answers", reduce="sum"), seed=0)
    summed.setup(SimpleNamespace(vlm=tiny_llava))
    assert summed.process(rows[1:])[0]["answers_logp"] == pytest.approx(alone.logprob_sum, abs=1e-5)
    [dropped] = stage.process([{**rows[1], "question": " "}])
    assert isinstance(dropped, Drop) and dropped.reason == "missing_question"


def test_reward_mix_weights_terms_and_zscores_among_candidates():
    raw = RewardMix(RewardMixParams(terms={"clip": 0.9, "logp": 0.1}), seed=0)
    [row] = raw.process([{"row_id": "r", "clip": [30.0, 10.0, None], "logp": [-1.0, -0.5, -2.0]}])
    assert row["reward"][:2] == pytest.approx([26.9, 8.95])
    assert row["reward"][2] is None
    scaled = RewardMix(RewardMixParams(terms={"clip": 0.9, "logp": 0.1}, normalize="zscore", output="r"), seed=0)
    [row] = scaled.process([{"row_id": "r", "clip": [3.0, 1.0], "logp": [-2.0, -1.0]}])
    assert row["r"] == pytest.approx([0.9 * 1 + 0.1 * -1, 0.9 * -1 + 0.1 * 1])
    [single] = raw.process([{"row_id": "s", "clip": 20.0, "logp": -1.0}])
    assert single["reward"] == pytest.approx(17.9)
    assert zscore([1.0, 1.0]) == [0.0, 0.0] and zscore([None, 2.0]) == [None, 0.0]


def test_shapes_oracle_counts_hits_minus_weighted_hallucinations():
    stage = ShapesOracle(ShapesOracleParams(column="answers"), seed=0)
    rows = [
        {
            "row_id": "r",
            "objects": ["red circle", "blue square"],
            "answers": ["a red circle and a blue square.", "a red circle and a green cross.", "nothing", None],
        }
    ]
    [row] = stage.process(rows)
    assert row["answers_oracle"] == [2.0, 1.0 - 2.0, 0.0, None]
    [bad] = stage.process([{"row_id": "x", "objects": None, "answers": "a red circle"}])
    assert isinstance(bad, Drop) and bad.reason == "missing_ground_truth"
