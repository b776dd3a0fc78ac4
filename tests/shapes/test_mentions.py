"""Object mentions: synonyms, plurals, counts, negation, and judging them against ground truth."""

from prefgen.shapes.mentions import Mention, judge, mentioned_kinds, parse_mentions


def test_synonyms_map_to_shapes():
    assert mentioned_kinds("a blue box, a green plus, a red disc and a yellow rectangle") == {
        ("blue", "square"),
        ("green", "cross"),
        ("red", "circle"),
        ("yellow", "square"),
    }
    assert mentioned_kinds("a violet dot and an orange x") == {("purple", "circle"), ("orange", "cross")}


def test_plurals_and_counts():
    assert parse_mentions("Two red circles and 3 blue crosses.") == [
        Mention("red", "circle", 2),
        Mention("blue", "cross", 3),
    ]
    assert parse_mentions("some green boxes") == [Mention("green", "square", None)]
    assert parse_mentions("a triangle") == [Mention(None, "triangle", 1)]


def test_colour_lists_share_one_noun():
    assert mentioned_kinds("a red and a blue circle") == {("red", "circle"), ("blue", "circle")}
    assert mentioned_kinds("red and yellow triangles") == {("red", "triangle"), ("yellow", "triangle")}


def test_phrases_end_at_other_words():
    # "red" belongs to no phrase: a colour after its noun is not read, and "ball" is not a shape
    assert mentioned_kinds("the square is red. a red ball") == {(None, "square")}


def test_negated_mentions_are_flagged_and_left_out():
    mentions = parse_mentions("There is no green cross, but a yellow plus.")
    assert mentions == [Mention("green", "cross", None, negated=True), Mention("yellow", "cross", 1)]
    assert mentioned_kinds("there is not a red square") == set()


def test_judge_counts_hits_and_hallucinations():
    present = {("red", "circle"), ("blue", "square")}
    verdict = judge("a red circle, two blue boxes, a green cross and a triangle.", present)
    assert verdict.hits == {("red", "circle"), ("blue", "square")}
    assert verdict.hallucinated == {("green", "cross"), (None, "triangle")}
    assert verdict.n_mentions == 4
    # a colourless mention of a shape that is there is neither a hit nor a hallucination
    assert judge("a circle", present).hallucinated == frozenset() and judge("a circle", present).hits == frozenset()
