"""The `select_pairs` stage: candidates into contract rows, with SENA's filters and their Drop reasons."""

import pytest

from prefgen.stages.base import Drop
from prefgen.stages.select_pairs import SelectPairs, SelectPairsParams, pair_id, pick

IMAGE = {"bytes": b"\x89PNG fake", "path": "cat.png"}


def stage(**params) -> SelectPairs:
    return SelectPairs(SelectPairsParams(**{"chosen": "good", "rejected": "bad", "method": "sena", **params}), seed=0)


def row(good="A cat sits on a red sofa.", bad="A dog sleeps on the floor.", **extra) -> dict:
    return {
        "row_id": "r1",
        "image_id": "img1",
        "image": IMAGE,
        "question": "What is on the sofa?",
        "good": good,
        "bad": bad,
        **extra,
    }


def one(st: SelectPairs, r: dict):
    [out] = st.process([r])
    return out


def reason(r: dict, **params) -> str | None:
    out = one(stage(**params), r)
    return out.reason if isinstance(out, Drop) else None


# ---------------------------------------------------------------------------------------------- kept pairs


def test_good_pair_is_written_in_the_output_contract():
    source = row(good_score=0.9, bad_score=0.25)
    out = one(stage(chosen_score="good_score", rejected_score="bad_score"), source)
    assert out["images"] == [IMAGE]
    assert out["prompt"] == [{"role": "user", "content": "What is on the sofa?"}]
    assert out["chosen"] == [{"role": "assistant", "content": "A cat sits on a red sofa."}]
    assert out["rejected"] == [{"role": "assistant", "content": "A dog sleeps on the floor."}]
    assert (out["chosen_score"], out["rejected_score"]) == (0.9, 0.25)
    assert out["margin"] == pytest.approx(0.65)
    assert out["method"] == "sena"
    assert out["id"] == pair_id(
        "img1", "What is on the sofa?", "A cat sits on a red sofa.", "A dog sleeps on the floor."
    )
    # input columns stay for the runner to store or leave
    assert {k: out[k] for k in ("row_id", "image_id", "question", "good", "bad")} == {
        "row_id": "r1",
        "image_id": "img1",
        "question": "What is on the sofa?",
        "good": "A cat sits on a red sofa.",
        "bad": "A dog sleeps on the floor.",
    }
    assert set(SelectPairsParams.writes) <= set(out)


def test_id_is_stable_and_depends_on_every_part():
    first = pair_id("img1", "Q?", "yes it is.", "no it is not.")
    assert first == pair_id("img1", "Q?", "yes it is.", "no it is not.")
    assert len(first) == 16 and int(first, 16) >= 0
    others = {
        pair_id("img2", "Q?", "yes it is.", "no it is not."),
        pair_id("img1", "Q!", "yes it is.", "no it is not."),
        pair_id("img1", "Q?", "yes it was.", "no it is not."),
        pair_id("img1", "Q?", "yes it is.", "no it was not."),
    }
    assert first not in others and len(others) == 4
    assert one(stage(), row())["id"] == one(stage(), row())["id"]


def test_margin_is_none_without_both_scores():
    out = one(stage(chosen_score="good_score"), row(good_score=0.9))
    assert (out["chosen_score"], out["rejected_score"], out["margin"]) == (0.9, None, None)
    out = one(stage(chosen_score="good_score", rejected_score="bad_score"), row(good_score=1, bad_score=float("nan")))
    assert (out["chosen_score"], out["rejected_score"], out["margin"]) == (1.0, None, None)


def test_list_candidates_are_chosen_best_and_worst_by_list_scores():
    answers = ["A cat on a sofa.", "A red cat on a sofa.", "Two dogs in a park."]
    r = row(good=answers, bad=answers, scores=[0.5, 0.8, 0.1])
    out = one(stage(chosen_score="scores", rejected_score="scores"), r)
    assert out["chosen"][0]["content"] == "A red cat on a sofa."
    assert out["rejected"][0]["content"] == "Two dogs in a park."
    assert out["margin"] == pytest.approx(0.7)


def test_list_candidates_ties_go_to_the_first_and_missing_scores_are_skipped():
    answers = ["First.", "Second.", "Third.", "Fourth."]
    scores = [None, 0.4, 0.2, 0.4]
    assert pick(answers, scores, best=True) == ("Second.", 0.4)
    assert pick(answers, [None, 0.4, 0.4, 0.2], best=False) == ("Fourth.", 0.2)
    assert pick(answers, [0.3, 0.3, 0.3, 0.3], best=False) == ("First.", 0.3)
    assert pick(answers, [None] * 4, best=True) == ("First.", None)
    assert pick(answers, [0.1, 0.2], best=True) == ("First.", None)  # scores that do not line up say nothing


def test_list_candidates_without_list_scores_take_the_first():
    out = one(stage(chosen_score="good_score"), row(good=["A cat on a sofa.", "A cat."], good_score=0.3))
    assert out["chosen"][0]["content"] == "A cat on a sofa."
    assert out["chosen_score"] == 0.3


def test_answers_are_stripped_of_surrounding_whitespace():
    out = one(stage(), row(good="  A cat sits on a red sofa.\n"))
    assert out["chosen"] == [{"role": "assistant", "content": "A cat sits on a red sofa."}]


# ---------------------------------------------------------------------------------------------- drops


@pytest.mark.parametrize("bad", [None, "", "   ", [], [""]])
def test_missing_candidate(bad):
    out = one(stage(), row(bad=bad))
    assert isinstance(out, Drop) and out.reason == "missing_candidate"
    assert out.detail.startswith("bad: ")


def test_missing_candidate_column():
    r = row()
    del r["good"]
    assert reason(r) == "missing_candidate"


def test_missing_question():
    assert reason(row(question="  ")) == "missing_question"


def test_the_prompt_column_is_the_pairs_prompt_and_part_of_its_id():
    asked = "What is on the sofa?\nAnswer in one word."
    out = one(stage(prompt="asked"), row(asked=asked))
    assert out["prompt"] == [{"role": "user", "content": asked}] and out["question"] == "What is on the sofa?"
    assert out["id"] == pair_id("img1", asked, "A cat sits on a red sofa.", "A dog sleeps on the floor.")
    assert out["id"] != one(stage(), row())["id"]
    assert stage(prompt="asked").params.input_columns()[-1] == "asked"


@pytest.mark.parametrize("asked", [None, "", 3])
def test_missing_prompt(asked):
    assert reason(row(asked=asked), prompt="asked") == "missing_prompt"


def test_equal_answers_after_whitespace_normalisation():
    assert reason(row(good="A cat  on a\nsofa.", bad="A cat on a sofa.")) == "equal_answers"


@pytest.mark.parametrize("answer", ["Yes", "no.", " NO ", "yes."])
def test_yes_no(answer):
    assert reason(row(bad=answer)) == "yes_no"
    assert reason(row(bad=answer), drop_yes_no=False) is None


def test_yes_with_more_words_is_not_a_bare_yes_no():
    assert reason(row(bad="Yes, a dog.")) is None


def test_rejected_in_chosen_ignores_case():
    r = row(good="A black cat sits on a red sofa.", bad="a BLACK cat")
    assert reason(r) == "rejected_in_chosen"
    assert reason(r, drop_rejected_in_chosen=False) is None


def test_duplicate_sentence():
    r = row(good="A cat sits. It is black. A cat sits.")
    assert reason(r) == "duplicate_sentence"
    assert reason(r, drop_duplicate_sentences=False) is None
    assert reason(row(good="A cat sits. A cat sits on a sofa.")) is None


def test_mostly_symbols():
    assert reason(row(bad="$$ ## !! a")) == "mostly_symbols"  # 6 symbols out of 10 characters
    assert reason(row(bad="$$ ## !! a"), max_non_alnum_fraction=0.7) is None


def test_too_long():
    r = row(good="one two three four five six")
    assert reason(r, max_words=5) == "too_long"
    assert reason(r, max_words=6) is None
    assert reason(r) is None  # no limit by default


def test_low_margin():
    r = row(good_score=0.5, bad_score=0.45)
    params = dict(chosen_score="good_score", rejected_score="bad_score")
    assert reason(r, min_margin=0.1, **params) == "low_margin"
    assert reason(r, min_margin=0.05 - 1e-9, **params) is None
    assert reason(row(), min_margin=0.1) is None  # unknown margin: not filtered


def test_length_ratio():
    r = row(good="A cat sits on a red sofa by the window.", bad="A dog.")  # 39 / 6 characters
    assert reason(r, max_length_ratio=6.0) == "length_ratio"
    assert reason(r, max_length_ratio=7.0) is None


def test_first_failing_filter_names_the_drop():
    # equal answers are also "rejected in chosen" and bare yes/no: the earlier filter wins
    assert reason(row(good="Yes", bad="yes ")) == "yes_no"
    assert reason(row(good="Yes.", bad="Yes.")) == "equal_answers"
    assert reason(row(good="No. No.", bad="A dog. A dog."), max_words=1) == "duplicate_sentence"


def test_drop_keeps_the_row_and_a_readable_detail():
    source = row(bad="No.")
    out = one(stage(), source)
    assert out == Drop(source, "yes_no", "rejected: 'No.'")


def test_rows_are_judged_alone_whatever_the_batch():
    rows = [row(), row(bad="Yes"), row(good=None)]
    st = stage()
    assert st.process(rows) == [one(st, r) for r in rows]


# ------------------------------------------------------------ guards against reward gaming (issue 33), off by default

GUARDS = dict(max_word_run=2, min_chosen_words=2, drop_numbers_only=True, max_length_share=0.9)


def detail(r: dict, **params) -> str:
    out = one(stage(**params), r)
    assert isinstance(out, Drop), out
    return f"{out.reason}: {out.detail}"


@pytest.mark.parametrize(
    "good",
    ["There a purple circle. a purple circle. a a a a", "There are two two two red squares."],
)
def test_guards_are_off_by_default(good):
    assert reason(row(good=good, bad="two.")) is None
    assert reason(row(good="two.", bad="three.")) is None
    assert reason(row(good="A cat.", bad="A cat sits on a red sofa by the window.")) is None


def test_degenerate_chosen_a_word_repeated_back_to_back():
    r = row(good="There is a purple circle. A a a a", bad="There are two purple circles.")
    assert detail(r, max_word_run=3) == "degenerate_chosen: chosen repeats 'a' 4 times in a row > 3"
    assert reason(r, max_word_run=4) is None
    # case and punctuation between the words do not hide the run
    assert reason(row(good="Circle, circle. CIRCLE circle!"), max_word_run=3) == "degenerate_chosen"


def test_degenerate_chosen_reads_the_chosen_answer_only():
    assert reason(row(good="There is a red circle.", bad="a a a a a"), max_word_run=2) is None


def test_degenerate_chosen_too_few_words():
    r = row(good="There.", bad="There is a blue square.")
    assert detail(r, min_chosen_words=2) == "degenerate_chosen: chosen has 1 words < 2: 'There.'"
    assert reason(row(good="There is.", bad="There is a blue square."), min_chosen_words=2) is None


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("two.", "three."),
        ("There are 2 red circles.", "There are 3 red circles."),
        ("There is a red circle.", "There are two red circles."),
        ("There are two crosses and a circle.", "There is one cross and three circles."),
    ],
)
def test_numbers_only_drops_answers_that_differ_in_their_numbers_alone(good, bad):
    assert detail(row(good=good, bad=bad), drop_numbers_only=True) == f"numbers_only: {good!r} / {bad!r}"


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("There is a red circle.", "There is a blue circle."),  # a colour, not a number
        ("There are two red circles.", "There are two red squares."),
        ("There is a red circle.", "There is no red circle."),  # presence: "no" is no count
        ("two.", "two red circles."),
    ],
)
def test_numbers_only_keeps_answers_that_differ_in_more(good, bad):
    assert reason(row(good=good, bad=bad), drop_numbers_only=True) is None


def test_count_disagreement_drops_pairs_with_one_sentence_that_differs_in_its_number_alone():
    good, bad = "There are two green crosses. There is a red circle.", "There is a green cross. There is a square."
    assert detail(row(good=good, bad=bad), drop_count_disagreement=True) == f"count_disagreement: {good!r} / {bad!r}"
    assert reason(row(good=good, bad=bad), drop_numbers_only=True) is None  # they differ in more than numbers
    assert reason(row(good=good, bad="There is a blue square."), drop_count_disagreement=True) is None


def test_mostly_length_drops_an_answer_that_is_the_other_with_words_left_out():
    long = "There is a red circle. There is a blue square next to it."
    # the chosen is the rejected cut short: all of the difference is length
    assert detail(row(good="There is a red circle.", bad=long), max_length_share=0.9) == (
        "mostly_length: 1.00 of the difference is length > 0.9"
    )
    # the same the other way round, once `rejected_in_chosen` (which catches it first) is off
    r = row(good=long, bad="There is a red circle.")
    assert reason(r, max_length_share=0.9) == "rejected_in_chosen"
    assert reason(r, max_length_share=0.9, drop_rejected_in_chosen=False) == "mostly_length"


def test_mostly_length_keeps_answers_that_differ_in_what_they_say():
    # one word replaced and three added: 3 of the 5 unshared tokens are surplus, 0.6
    r = row(good="There is a red circle.", bad="There is a blue circle next to it.")
    assert reason(r, max_length_share=0.6) is None
    assert reason(r, max_length_share=0.59) == "mostly_length"
    assert reason(row(good="There is a red circle.", bad="There is a blue square."), max_length_share=0.1) is None


def test_guards_run_after_the_older_filters_in_the_documented_order():
    assert reason(row(good="a a a. a a a.", bad="two."), **GUARDS) == "duplicate_sentence"
    assert reason(row(good="a a a", bad="two."), **GUARDS, max_words=2) == "degenerate_chosen"
    assert reason(row(good="two.", bad="three."), **GUARDS | dict(min_chosen_words=None)) == "numbers_only"
