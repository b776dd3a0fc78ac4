"""CHAIR, POPE and CLIP AUC on hand-made cases whose answers are worked out by hand."""

import numpy as np
import pytest
import torch

from prefgen.shapes.language import absent_companions, caption, describe, phrase
from prefgen.shapes.metrics import (
    auc,
    chair,
    clip_auc,
    describe_verdict,
    negative_tier,
    parse_yes_no,
    pope_metrics,
    pope_questions,
    run_chair,
    run_pope,
    training_frequencies,
)
from prefgen.shapes.world import COLOURS, KINDS, PRIOR_PAIRS, make_scenes, render, scene_of

RED_CIRCLE, BLUE_SQUARE, GREEN_CROSS = ("red", "circle"), ("blue", "square"), ("green", "cross")
TRIGGER, COMPANION = PRIOR_PAIRS[0]  # yellow triangle -> green circle


def test_chair_on_hand_made_captions():
    scenes = [scene_of([RED_CIRCLE, BLUE_SQUARE]), scene_of([GREEN_CROSS]), scene_of([TRIGGER])]
    texts = [
        "a red circle and a blue square.",  # 2 hits
        "a green cross and a yellow triangle.",  # 1 hit, 1 hallucination
        "a yellow triangle and a green circle.",
    ]  # 1 hit, the absent companion hallucinated
    result = chair(texts, scenes)
    assert result["chair_s"] == pytest.approx(2 / 3)
    assert result["chair_i"] == pytest.approx(2 / 6)
    assert result["recall"] == 1.0
    assert result["mean_mentions"] == 2.0
    assert result["companion_rate"] == 1.0  # one lone trigger, its companion named
    assert result["other_absent_rate"] == pytest.approx(1 / (22 + 23 + 22))  # the yellow triangle of caption 2


def test_the_worlds_own_descriptions_are_right_and_each_kind_of_fault_is_caught():
    scenes = make_scenes(200, seed=3, split="eval")
    assert chair([describe(s) for s in scenes], scenes) == {
        **chair([describe(s) for s in scenes], scenes),
        "well_formed": 1.0,
        "count_wrong": 0.0,
        "right": 1.0,
    }
    two = scene_of([RED_CIRCLE, RED_CIRCLE, BLUE_SQUARE])
    assert describe_verdict("There are two red circles. There is a blue square.", two) == {
        "well_formed": True,
        "count_wrong": False,
        "right": True,
    }
    faults = {
        "There is a red circle. There is a blue square.": (True, True),  # one red circle said, two there
        "There are two red circles. There is a blue square. There is a blue square.": (False, False),  # repeated
        "There are two red circles.": (True, False),  # the blue square missed
        "There are two red circles. There is a blue square. There is a green cross.": (True, False),  # absent named
        "There the image the red circles. There is a blue square.": (False, False),  # not the world's grammar
        "There are two red circles and a blue square.": (False, False),  # one sentence, two kinds
    }
    for text, (well_formed, count_wrong) in faults.items():
        verdict = describe_verdict(text, two)
        assert (verdict["well_formed"], verdict["count_wrong"], verdict["right"]) == (well_formed, count_wrong, False)
    assert describe_verdict("There are three red circles. There is a blue square.", two)["count_wrong"]


def test_chair_recall_counts_missed_objects():
    result = chair(["a red circle."], [scene_of([RED_CIRCLE, BLUE_SQUARE, GREEN_CROSS])])
    assert result == {**result, "chair_s": 0.0, "chair_i": 0.0, "recall": pytest.approx(1 / 3)}


def test_pope_answer_parsing_and_metrics():
    assert parse_yes_no("Yes, there is.") and parse_yes_no("yes")
    assert not parse_yes_no("No.") and not parse_yes_no("There is not a red circle.") and not parse_yes_no("")
    half = pope_metrics([True, True, False, False], ["Yes.", "no", "yes", "No, there is not."])
    assert half == {"questions": 4, "accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "yes_ratio": 0.5}
    skewed = pope_metrics([True, True, True, False], [True, True, False, False])
    assert skewed["accuracy"] == 0.75 and skewed["precision"] == 1.0
    assert skewed["recall"] == pytest.approx(2 / 3) and skewed["f1"] == pytest.approx(0.8)


def test_pope_splits_are_balanced_and_adversarial_asks_the_absent_companion():
    scene = scene_of([TRIGGER, RED_CIRCLE])
    for split in ("random", "popular", "adversarial"):
        questions = pope_questions([scene], split, seed=0)
        assert [q["label"] for q in questions].count(True) == 2 == [q["label"] for q in questions].count(False)
        for q in questions:
            assert q["label"] == any(q["object"] == phrase(k) for k in scene.kinds)
    adversarial = [q["object"] for q in pope_questions([scene], "adversarial") if not q["label"]]
    assert adversarial[0] == phrase(COMPANION)
    assert set(training_frequencies()[:3]) == {companion for _, companion in PRIOR_PAIRS}


def test_run_pope_and_chair_with_oracle_and_yes_models():
    scenes = make_scenes(6, seed=0, split="eval")
    by_pixels = {render(s).tobytes(): s for s in scenes}  # an oracle recognises each scene by its pixels

    def oracle_answer(images, questions):
        return [
            "yes" if any(phrase(k) in q for k in by_pixels[i.tobytes()].kinds) else "no"
            for i, q in zip(images, questions)
        ]

    results = run_pope(oracle_answer, scenes)
    assert all(results[split]["accuracy"] == 1.0 for split in ("random", "popular", "adversarial"))
    always_yes = run_pope(lambda images, qs: ["Yes."] * len(qs), scenes)["adversarial"]
    assert always_yes["yes_ratio"] == 1.0 and always_yes["accuracy"] == 0.5 and always_yes["recall"] == 1.0
    report, texts = run_chair(lambda images: [caption(by_pixels[i.tobytes()]) for i in images], scenes)
    assert report["chair_s"] == 0.0 and report["recall"] == 1.0 and len(texts) == 6


class _Scorer:
    """Embeddings from ground truth: multi-hot kinds (an oracle) or colours only (a colour-blind CLIP)."""

    def __init__(self, colours_only: bool):
        self.colours_only = colours_only

    def _vector(self, kinds):
        names = list(COLOURS) if self.colours_only else KINDS
        return torch.tensor([float(any((k[0] if self.colours_only else k) == n for k in kinds)) for n in names])

    def image_embeddings(self, scenes):
        return torch.stack([self._vector(s.kinds) for s in scenes])

    def text_embeddings(self, texts):
        return torch.stack([self._vector([k for k in KINDS if phrase(k) == t]) for t in texts])


def test_auc_and_clip_auc():
    assert auc([3, 2], [1, 2]) == pytest.approx(0.875)
    scenes = make_scenes(40, seed=0, split="eval")
    oracle = clip_auc(_Scorer(colours_only=False), scenes, images=scenes)
    assert all(oracle[k] == 1.0 for k in ("overall", "companion", "same_colour", "same_shape"))
    blind = clip_auc(_Scorer(colours_only=True), scenes, images=scenes)
    assert blind["same_colour"] == 0.5  # every same-colour negative ties with the positives
    assert blind["overall"] > 0.75 and not np.isnan(blind["companion"])


def test_pope_tiers_name_what_each_absent_object_is_to_the_scene():
    blue_cross = ("blue", "cross")  # the companion of the red square
    scene = scene_of([TRIGGER, RED_CIRCLE])
    assert negative_tier(scene, COMPANION) == "companion"
    assert negative_tier(scene, ("red", "triangle")) == "look-alike"  # the colour of a present object
    assert negative_tier(scene, ("blue", "cross")) == "other"
    alone = scene_of([blue_cross])
    assert negative_tier(alone, ("red", "square")) == "trigger"  # the trigger of a companion that is there
    questions = pope_questions([scene], "adversarial")
    assert [q["tier"] for q in questions] == ["present", "present", "companion", "look-alike"]


def test_run_pope_reports_yes_to_each_tier_of_absent_object():
    scenes = make_scenes(40, seed=0, split="eval")
    by_pixels = {render(s).tobytes(): s for s in scenes}

    def prior_answer(images, questions):  # right, except "yes" to every absent companion of a present trigger
        out = []
        for image, question in zip(images, questions):
            scene = by_pixels[image.tobytes()]
            said = any(phrase(k) in question for k in [*scene.kinds, *absent_companions(scene)])
            out.append("yes" if said else "no")
        return out

    adversarial = run_pope(prior_answer, scenes)["adversarial"]
    assert adversarial["companion_yes"] == 1.0
    assert adversarial["negatives"]["companion"]["yes_ratio"] == 1.0
    assert all(adversarial["negatives"][t]["yes_ratio"] == 0.0 for t in adversarial["negatives"] if t != "companion")
    companions = adversarial["negatives"]["companion"]["questions"]
    assert companions > 0
    assert adversarial["accuracy"] == pytest.approx(1 - companions / adversarial["questions"])
