"""The text tests behind `select_pairs`' guards: word runs, answers differing only in numbers, length share."""

import pytest

from prefgen.stages import pair_text
from prefgen.stages.pair_text import differ_only_in_numbers, length_share, longest_word_run, words


def test_words_are_lower_case_without_punctuation():
    assert words("There is a RED circle, next to it!") == ["there", "is", "a", "red", "circle", "next", "to", "it"]


@pytest.mark.parametrize(
    ("text", "run"),
    [
        ("There a purple circle. a purple circle. a a a a", ("a", 4)),
        ("There is a red circle.", ("there", 1)),
        ("Circle circle, CIRCLE.", ("circle", 3)),
        ("", ("", 0)),
        ("...", ("", 0)),
    ],
)
def test_longest_word_run(text, run):
    assert longest_word_run(text) == run


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("two.", "three.", True),
        ("There is an orange cross.", "There are four orange crosses.", True),
        ("There are 10 boxes.", "There is a box.", True),
        ("There is a red circle.", "There is a red circle.", False),  # equal: no number differs
        ("There is a red circle.", "There is a red square.", False),
        ("There is a red circle.", "There is no red circle.", False),
        ("two.", "two circles.", False),
        ("There are a blue cross.", "There is a blue cross.", False),  # the same number: grammar only
        ("There is one circle.", "There is a circle.", False),  # "a" is one
    ],
)
def test_differ_only_in_numbers(first, second, same):
    assert differ_only_in_numbers(first, second) is same
    assert differ_only_in_numbers(second, first) is same


@pytest.mark.parametrize(
    ("first", "second", "share"),
    [
        ("a b c", "a b c d e", 1.0),  # the shorter with words left out
        ("a b c", "a x c", 0.0),  # one word replaced on each side
        ("a b c", "a x c d", 1 / 3),  # one replaced, one added: 3 unshared tokens, 1 surplus
        ("a b c", "A B C", 0.0),  # the same tokens
    ],
)
def test_length_share(first, second, share):
    assert length_share(first, second) == pytest.approx(share)
    assert length_share(second, first) == pytest.approx(share)


def test_count_direction_and_bias_read_one_number_per_answer():
    assert pair_text.count_direction("two.", "three.") == 1
    assert pair_text.count_direction("There are 3 circles.", "There is a circle.") == -1
    assert pair_text.count_direction("two.", "Two.") == 0
    assert pair_text.count_direction("red.", "three.") is None  # the chosen answer says no number
    assert pair_text.count_direction("There are two circles and a square.", "three.") is None  # two numbers
    found = pair_text.direction_bias([("two.", "three."), ("two.", "four."), ("three.", "one."), ("red.", "blue.")])
    assert found == {"count_pairs": 3, "rejected_higher": 2 / 3, "rejected_lower": 1 / 3, "bias": pytest.approx(1 / 3)}
    assert pair_text.direction_bias([])["bias"] == 0.0


def test_count_disagreement_finds_one_sentence_pair_that_differs_only_in_its_number():
    chosen = "There is a red circle. There are two green crosses."
    assert pair_text.count_disagreement(chosen, "There is a green cross. There is a blue square.")
    assert pair_text.count_disagreement("There are 3 squares.", "There are two squares. There is a cross.")
    assert not pair_text.count_disagreement(chosen, "There is a red circle. There is a blue square.")
    assert not pair_text.count_disagreement(chosen, chosen)
    assert not pair_text.count_disagreement("There is a red circle.", "There is a green circle.")  # no number differs
