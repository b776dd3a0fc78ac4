"""The `shapes_answer` stage: the right answer to each row's question from the scene's objects (SENA's oracle
control). `shapes_oracle` is tested with the other score stages (tests/stages/score/test_scores.py)."""

import pytest

from prefgen.shapes.oracle import ShapesAnswer, ShapesAnswerParams
from prefgen.stages.base import Drop

SCENE = ["red square", "blue cross", "green circle", "green circle"]


def answer(question, objects=SCENE, **params):
    row = {
        "row_id": "r",
        "objects": objects,
        "question": question,
        "enhanced_answer": "the model's answer.",
        "question_source": params.pop("source", "self_question"),
    }
    [out] = ShapesAnswer(ShapesAnswerParams(**params), seed=0).process([row])
    return out


@pytest.mark.parametrize(
    "question, right",
    [
        ("what color is the square?", "red."),
        (
            "What colour is the cross?\nLook at the image and answer the question using a single word or phrase.",
            "blue.",
        ),
        ("what shape is the green object?", "circle."),
        ("how many objects are there?", "four."),
        ("how many circles are there?", "two."),
        ("is there a red square in the image?", "yes."),
        ("is there a yellow circle in the image?", "no."),
    ],
)
def test_world_questions_get_the_one_right_answer(question, right):
    out = answer(question)
    assert (out["oracle_answer"], out["oracle_answer_known"]) == (right, True)


@pytest.mark.parametrize("question", ["what color is the circle?", "where is the square?", "why?"])
def test_questions_the_scene_does_not_settle_keep_the_fallback(question):
    scene = ["red circle", "blue circle"]  # two colours of circle: "what color is the circle?" has no one answer
    out = answer(question, scene)
    assert (out["oracle_answer"], out["oracle_answer_known"]) == ("the model's answer.", False)


def test_description_rows_get_the_true_caption_or_sentences():
    assert (
        answer("Describe the image concisely.", source="description")["oracle_answer"]
        == "a red square, a blue cross and two green circles."
    )
    sentences = answer("Describe the image concisely.", source="description", description_form="sentences")
    assert sentences["oracle_answer"] == (
        "There is a red square. There is a blue cross next to it. There are two green circles."
    )  # a prior pair


def test_the_fallback_and_output_columns_are_settings():
    params = ShapesAnswerParams(output="truth", fallback="answer")
    assert params.input_columns() == ["objects", "question", "answer"]
    assert params.output_columns() == ["truth", "truth_known"]


@pytest.mark.parametrize("objects", [None, "red square", ["red"], [3]])
def test_rows_without_ground_truth_are_dropped_with_the_reason(objects):
    out = answer("how many objects are there?", objects)
    assert isinstance(out, Drop) and out.reason == "missing_ground_truth"
