"""The round gate's label-free signals (`--eval gate:...`): on scripted texts, and on the shipped shapes VLMs over a
plain image folder that holds no ground truth."""

import math
from pathlib import Path

import pytest

import prefgen.shapes
from prefgen.core.errors import PrefgenError
from prefgen.eval.gate import folder_images, gate_signals, text_signals, verdict
from prefgen.eval.rounds import Setting, parse_spec, round_evaluator
from prefgen.shapes.world import make_scenes, render
from prefgen.train.rounds import gate_failed

CHECKPOINTS = Path(prefgen.shapes.__file__).parent / "checkpoints"
BASE = ["There is a red circle.", "There are two blue squares. There is a green cross."]


def test_text_signals_count_repeats_and_words():
    found = text_signals(["There a purple circle. a a a", "There is a red circle. There is a red circle.", "There."])
    assert found.repeated_words == pytest.approx(1 / 3)  # "a a a": three back to back
    assert found.repeated_sentences == pytest.approx(1 / 3)
    assert found.words == pytest.approx((7 + 10 + 1) / 3)


def test_gate_signals_compare_the_round_with_the_base():
    logprob = {tuple(BASE): -0.5, ("There.", "There."): -2.0}
    signals = gate_signals(["There.", "There."], BASE, lambda texts: logprob[tuple(texts)])
    assert signals == {
        "repeated_words": 0.0,
        "repeated_sentences": 0.0,
        "words": 1.0,
        "length_drift": pytest.approx(1 / 7.5 - 1),  # the base says 7.5 words on average
        "base_logprob": -2.0,
        "base_logprob_drop": 1.5,
    }


def test_verdict_keeps_a_round_within_every_limit_and_judges_length_drift_both_ways():
    signals = {"repeated_words": 0.1, "length_drift": -0.4, "base_logprob_drop": 0.2}
    assert verdict(signals, {}) == 1
    assert verdict(signals, {"repeated_words": 0.1, "base_logprob_drop": 0.5}) == 1
    assert verdict(signals, {"repeated_words": 0.05}) == 0
    assert verdict(signals, {"length_drift": 0.3}) == 0  # shrinking fails as padding does
    assert verdict({"length_drift": math.nan}, {"length_drift": 0.3}) == 0


def test_gate_failed_only_on_a_recorded_stop():
    assert gate_failed({"eval": {"gate": {"verdict": 0}}})
    assert not gate_failed({"eval": {"gate": {"verdict": 1}}})
    assert not gate_failed({"eval": {"gate": {"length_drift": 3.0}}})  # signals without limits never stop
    assert not gate_failed({})


def test_gate_spec_needs_images_a_base_and_numbers(tmp_path):
    assert parse_spec("gate:images=imgs,max_length_drift=0.3") == (
        "gate",
        {"images": "imgs", "max_length_drift": "0.3"},
    )
    with pytest.raises(PrefgenError, match="gate needs images="):
        round_evaluator(["gate"], Setting(base=tmp_path))
    with pytest.raises(PrefgenError, match="compares each round with the base model"):
        round_evaluator([f"gate:images={tmp_path}"], Setting())
    with pytest.raises(PrefgenError, match="no images"):
        round_evaluator([f"gate:images={tmp_path}"], Setting(base=tmp_path))
    make_folder(tmp_path, 1)
    with pytest.raises(PrefgenError, match="max_length_drift must be a number, not 'wide'"):
        round_evaluator([f"gate:images={tmp_path},max_length_drift=wide"], Setting(base=tmp_path))


def make_folder(folder: Path, n: int) -> Path:
    for i, scene in enumerate(make_scenes(n, seed=1, split="eval")):
        render(scene).save(folder / f"scene-{i}.png")
    return folder


def test_gate_on_a_plain_folder_with_the_shapes_vlms(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    make_folder(images, 4)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [f"scene-{i}.png" for i in range(4)]
    assert [p.name for p in folder_images(images, 3)] == ["scene-0.png", "scene-1.png", "scene-2.png"]
    spec = f"gate:images={images},limit=3,prompt=Describe the image.,max_base_logprob_drop=0.5"
    evaluate = round_evaluator([spec], Setting(device="cpu", base=CHECKPOINTS / "shapes-vlm"))

    base = evaluate(CHECKPOINTS / "shapes-vlm")["gate"]
    assert (base["length_drift"], base["base_logprob_drop"], base["verdict"], base["images"]) == (0.0, 0.0, 1, 3)
    assert base["words"] > 3 and base["base_logprob"] < 0 and base["repeated_words"] == 0.0

    early = evaluate(CHECKPOINTS / "shapes-vlm-early")["gate"]  # another model, judged by the same base
    assert early["base_logprob"] != base["base_logprob"] and early["words"] > 3
    assert early["verdict"] == (1 if early["base_logprob_drop"] <= 0.5 else 0)
    assert set(early) == {*base}
