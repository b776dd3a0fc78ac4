"""The ground-truth judge: right answers per kind of question, and pair verdicts, on hand-made scenes."""

import pytest

from prefgen.shapes.judge import answer_correct, pair_verdict, question_kind, reward_accuracy, right_answer
from prefgen.shapes.world import scene_of

RED_CIRCLE, BLUE_SQUARE, RED_SQUARE = ("red", "circle"), ("blue", "square"), ("red", "square")
SHORT = "\nLook at the image and answer the question using a single word or phrase."


@pytest.mark.parametrize(
    "question, kind",
    [
        ("is there a red circle in the image?", "presence"),
        ("Is there a green cross in the image?" + SHORT, "presence"),
        ("what color is the square?", "colour"),
        ("What colour is the circle?", "colour"),
        ("what shape is the red object?", "shape"),
        ("how many objects are there?", "count"),
        ("How many circles are there?" + SHORT, "count"),
        ("Describe the image.", "description"),
        ("what is this?", "description"),
        (None, "description"),
    ],
)
def test_every_prompt_has_a_kind(question, kind):
    assert question_kind(question) == kind


def test_right_answers_come_from_the_scene():
    scene = scene_of([RED_CIRCLE, BLUE_SQUARE, RED_SQUARE])
    assert right_answer("is there a red circle in the image?", scene) == "yes"
    assert right_answer("is there a green cross in the image?", scene) == "no"
    assert right_answer("what color is the circle?", scene) == "red"
    assert right_answer("what color is the square?", scene) is None  # red and blue: the scene does not settle it
    assert right_answer("what color is the cross?", scene) is None  # no cross at all
    assert right_answer("what shape is the blue object?", scene) == "square"
    assert right_answer("what shape is the red object?", scene) is None  # a circle and a square
    assert right_answer("how many objects are there?", scene) == "three"
    assert right_answer("how many squares are there?", scene) == "two"
    assert right_answer("how many red objects are there?", scene) == "two"
    assert right_answer("how many green crosses are there?", scene) == "zero"
    assert right_answer("Describe the image.", scene) is None


def test_an_answer_of_the_wrong_kind_is_wrong():
    scene = scene_of([RED_CIRCLE, BLUE_SQUARE])
    assert answer_correct("what color is the square?", "two.", scene) is False
    assert answer_correct("what color is the square?", "blue.", scene) is True
    assert answer_correct("what color is the square?", "It is blue.", scene) is True
    assert answer_correct("what shape is the red object?", "a circle.", scene) is True
    assert answer_correct("what shape is the red object?", "red.", scene) is False
    assert answer_correct("how many objects are there?", "2", scene) is True
    assert answer_correct("how many objects are there?", "three.", scene) is False
    assert answer_correct("is there a blue square in the image?" + SHORT, "Yes.", scene) is True
    assert answer_correct("is there a blue square in the image?", "no.", scene) is False
    assert answer_correct("is there a blue square in the image?", "", scene) is False
    assert answer_correct("Describe the image.", "a red circle.", scene) is None


def test_a_wrong_answer_that_hallucinates_nothing_does_not_beat_a_right_one():
    scene = scene_of([RED_CIRCLE, BLUE_SQUARE])
    question = "what color is the square?"
    assert pair_verdict("two.", "blue, four, four, a red cross.", scene, question) == -1
    assert pair_verdict("blue.", "two.", scene, question) == 1
    assert pair_verdict("two.", "four, four, four.", scene, question) == 0  # both wrong: a tie, not "better"
    assert pair_verdict("blue.", "It is blue.", scene, question) == 0


def test_descriptions_are_judged_by_hallucinations_then_recall():
    scene = scene_of([RED_CIRCLE, BLUE_SQUARE])
    assert pair_verdict("a red circle and a blue square.", "a red circle and a green cross.", scene) == 1
    assert pair_verdict("a red circle.", "a red circle and a blue square.", scene) == -1
    assert pair_verdict("a red circle.", "a red disc.", scene) == 0
    # a colour question the scene does not settle falls back to the description rule
    two_squares = scene_of([RED_SQUARE, BLUE_SQUARE])
    assert pair_verdict("a green cross.", "a red square.", two_squares, "what color is the square?") == -1


def test_reward_accuracy_reports_per_kind_of_prompt():
    scene = scene_of([RED_CIRCLE, BLUE_SQUARE])
    pairs = [
        (scene, "a red circle and a blue square.", "a red circle and a green cross.", "Describe the image."),
        (scene, "a red circle.", "a red circle and a blue square."),
        (scene, "no.", "yes.", "is there a green cross in the image?"),
        (scene, "three.", "two.", "how many objects are there?"),
        (scene, "two.", "four, four.", "what color is the square?"),
        (scene, "blue.", "red.", "what color is the square?"),
        (scene, "two.", "a green cross.", "what color is the cross?"),  # no cross: unsettled, judged as text
    ]
    result = reward_accuracy(pairs)
    assert (result["better"], result["tie"], result["worse"]) == (4, 1, 2)
    assert result["accuracy"] == pytest.approx(4 / 7) and result["accuracy_decided"] == pytest.approx(4 / 6)
    assert result["by_kind"] == {
        "presence": {"pairs": 1, "better": 1, "tie": 0, "worse": 0, "chosen_correct": 1, "rejected_correct": 0},
        "colour": {"pairs": 2, "better": 1, "tie": 1, "worse": 0, "chosen_correct": 1, "rejected_correct": 0},
        "count": {"pairs": 1, "better": 0, "tie": 0, "worse": 1, "chosen_correct": 0, "rejected_correct": 1},
        "colour_unsettled": {
            "pairs": 1,
            "better": 1,
            "tie": 0,
            "worse": 0,
            "chosen_hallucinated": 0,
            "rejected_hallucinated": 1,
        },
        "description": {
            "pairs": 2,
            "better": 1,
            "tie": 0,
            "worse": 1,
            "chosen_hallucinated": 0,
            "rejected_hallucinated": 1,
        },
    }
    assert list(result["by_kind"]) == ["presence", "colour", "count", "colour_unsettled", "description"]
