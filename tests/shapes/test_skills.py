"""The skills bench on a scripted VLM whose answers are worked out by hand."""

from types import SimpleNamespace

import pytest

from prefgen.shapes.judge import right_answer
from prefgen.shapes.skills import babbles, is_yes_no, measure_skills, questions_for
from prefgen.shapes.world import scene_of

SCENE = scene_of([("red", "circle"), ("blue", "square")])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("four four four four.", True),
        ("red, red, red.", True),
        ("Red red RED", True),
        ("a red red square.", False),
        ("There is a red square. There is a blue cross.", False),
        ("", False),
    ],
)
def test_babble_is_a_word_three_times_in_a_row(text, expected):
    assert babbles(text) is expected


def test_yes_no_questions_are_told_apart():
    assert is_yes_no("is there a red circle in the image?") and is_yes_no("Are there two squares?")
    assert not is_yes_no("what color is the square?") and not is_yes_no("how many objects are there?")


def test_questions_cover_every_settled_colour_and_shape_and_the_count():
    scene = scene_of([("red", "circle"), ("blue", "circle"), ("blue", "square")])
    assert questions_for(scene) == [
        ("colour", "what color is the square?"),
        ("shape", "what shape is the red object?"),
        ("count", "how many objects are there?"),
    ]


class Scripted:
    """Answers right on clean images and babbles on noised ones; asks a colour question and a yes/no one; improves
    nothing; describes one present and one absent object."""

    def __init__(self, clean_pixels):
        self.clean = clean_pixels  # images are told apart from their noised copies by their bytes

    def generate(self, prompts, n=1, max_new_tokens=0, temperature=0.0, seed=None):
        return [[SimpleNamespace(text=self.reply(p, temperature > 0)) for _ in range(n)] for p in prompts]

    def reply(self, prompt, sampled):
        clean = prompt.images[0].tobytes() in self.clean
        text = prompt.text
        if text.startswith("Please look at the image"):
            return "is there a cube?" if sampled else "what color is the square?"
        if text.startswith("Describe the image concisely"):
            return "a blue square."
        if text.startswith("Given the image"):
            return "I cannot tell."
        if text.startswith("Describe the image."):
            return "There is a blue square. There is a green cross." if clean else "square square square"
        if not clean:
            return "four four four."
        return right_answer(text, SCENE) + "."


def test_measure_skills_on_a_scripted_model():
    from prefgen.shapes.world import render

    scenes = [SCENE] * 2
    vlm = Scripted({render(s).tobytes() for s in scenes})
    report = measure_skills(vlm, scenes, samples=1)
    assert report["qa"] == {"colour": 1.0, "shape": 1.0, "count": 1.0, "all": 1.0, "questions": 10}
    assert report["ask"]["questions"] == 4 and report["ask"]["not_yes_no"] == 0.5
    assert report["ask"]["by_kind"]["colour"] == {"share": 0.5, "answerable": 1.0}
    assert report["enhance"] == {
        "plain": 1.0,
        "improved": 1.0,
        "changed": 0.0,
        "caption_chair": {
            "chair_s": 0.0,
            "chair_i": 0.0,
            "recall": 0.5,
            "companion_rate": 0.0,
            "other_absent_rate": 0.0,
        },
    }
    noised = report["corrupted"]
    assert noised["qa"]["all"] == 0.0 and noised["babble_answers"] == 1.0 and noised["babble_descriptions"] == 1.0
    assert noised["babble_descriptions_clean"] == 0.0 and noised["chair_clean"]["chair_s"] == 1.0
