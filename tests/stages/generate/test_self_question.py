"""The `self_question` stage (SENA): asking, SENA's sentence filters, the answerability check that sees the image,
the regeneration loop and its drop reasons, against a scripted VLM and on the tiny random LLaVA."""

import re

import pytest

from prefgen.models.images import decode_image
from prefgen.stages.base import Drop
from prefgen.stages.generate.self_question import ASK_PROMPT, SelfQuestion, SelfQuestionParams
from stages.generate.test_generation import Recording, ScriptedVLM, ready, row, same_pixels, textured_rows


def asked_in(prompt) -> str:
    """The question a check prompt asks about."""
    return re.search(r"QUESTION: (.*)\n\(1\)", prompt.text).group(1)


def script(ask, check=None):
    """A VLM whose every ask output is ``ask`` and whose check output for a question is ``check[question]``
    (default: the question repeated, i.e. judged answerable)."""

    def reply(prompt, sample):
        if prompt.text == ASK_PROMPT:
            return ask
        question = asked_in(prompt)
        return (check or {}).get(question, f"QUESTION: {question}")

    return ScriptedVLM(reply)


def run(vlm, rows=None, seed=0, **params):
    stage = ready(SelfQuestion(SelfQuestionParams(**params), seed=seed), vlm)
    return stage.process(rows or [row(0)])


def kept(out):
    return [
        (r["row_id"], r["question"], r["question_source"], r["question_attempts"])
        for r in out
        if not isinstance(r, Drop)
    ]


def drops(out):
    return [(d.row["row_id"], d.reason) for d in out if isinstance(d, Drop)]


def check_calls(vlm):
    return [call for call in vlm.calls if call["prompts"][0].text != ASK_PROMPT]


# ---------------------------------------------------------------------------------------------- asking and filters


def test_questions_are_the_sentences_ending_with_a_question_mark_without_banned_words():
    ask = "QUESTION: What color is the car? The car is red. What is the NAME of the dog? Is it sunny?\nWhy"
    out = run(script(ask), check=False, questions_per_image=5)
    assert kept(out) == [
        ("r0-q0", "What color is the car?", "self_question", ["What color is the car?"]),
        ("r0-q1", "Is it sunny?", "self_question", ["Is it sunny?"]),
    ]
    assert out[0]["image_id"] == "img0" and out[0]["image"] == row(0)["image"]


def test_banned_words_are_matched_in_any_case_and_extra_questions_are_not_kept():
    out = run(script("Where is the Dog? Is it day? Is it night?"), check=False, banned_words=["dOG"])
    assert [q for _, q, _, _ in kept(out)] == ["Is it day?"]


def test_without_the_mark_requirement_every_sentence_is_a_question():
    out = run(
        script("Describe the scene. Count the cars."), check=False, require_question_mark=False, questions_per_image=2
    )
    assert [q for _, q, _, _ in kept(out)] == ["Describe the scene.", "Count the cars."]


def test_an_image_without_a_usable_question_is_dropped_with_the_reason():
    [banned] = run(script("What is the name of the cat?"))
    assert banned.reason == "no_question" and "contains the banned word 'name'" in banned.detail
    [silent] = run(script("A cat on a mat."))
    assert silent.reason == "no_question" and "A cat on a mat." in silent.detail
    assert isinstance(silent.row, dict) and silent.row["row_id"] == "r0"


def test_greedy_asking_samples_the_extra_questions_from_the_row_seed_and_dedupes():
    vlm = ScriptedVLM(
        lambda p, k: "Is it red?" if vlm.calls[-1]["temperature"] == 0 else ["is it  RED?", "Is it blue?"][k]
    )
    rows = [row(0), row(1)]
    stage = ready(SelfQuestion(SelfQuestionParams(questions_per_image=3, check=False), seed=7), vlm)
    out = stage.process(rows)
    assert [(r["row_id"], r["question"]) for r in out] == [
        ("r0-q0", "Is it red?"),
        ("r0-q1", "Is it blue?"),
        ("r1-q0", "Is it red?"),
        ("r1-q1", "Is it blue?"),
    ]
    greedy, sampled = vlm.calls
    assert (greedy["n"], greedy["temperature"], len(greedy["prompts"])) == (1, 0.0, 2)
    assert (sampled["n"], sampled["temperature"], sampled["seed"]) == (2, 1.0, [stage.seed_for(r) for r in rows])


def test_with_a_temperature_every_question_is_sampled_in_one_call():
    vlm = ScriptedVLM(lambda p, k: ["Is it red?", "Is it blue?"][k])
    out = run(vlm, check=False, questions_per_image=2, temperature=0.5)
    assert [q for _, q, _, _ in kept(out)] == ["Is it red?", "Is it blue?"]
    [call] = vlm.calls
    assert (call["n"], call["temperature"]) == (2, 0.5)


# ---------------------------------------------------------------------------------------------- the check


def test_the_check_sees_each_rows_own_image():
    vlm = script("What color is it?")
    rows = [row(0), row(1), row(2)]
    run(vlm, rows)
    [check] = check_calls(vlm)
    assert [asked_in(p) for p in check["prompts"]] == ["What color is it?"] * 3
    for r, prompt in zip(rows, check["prompts"]):
        [image] = prompt.images
        assert same_pixels(image, decode_image(r["image"]))
    assert check["temperature"] == 0.0


def test_a_question_the_check_repeats_or_does_not_answer_is_kept():
    question = "What color is the car?"
    for reply in [f"QUESTION: {question}", "question:  what color is the  car?", "Yes, it can be answered.", ""]:
        out = run(script(question, {question: reply}))
        assert kept(out) == [("r0-q0", question, "self_question", [question])], reply


def test_a_rewritten_question_replaces_the_original():
    out = run(script("What is he thinking?", {"What is he thinking?": "QUESTION: What is he holding? It is red."}))
    assert kept(out) == [
        ("r0-q0", "What is he holding?", "regenerated", ["What is he thinking?", "What is he holding?"])
    ]


def test_a_rewrite_failing_the_filters_is_checked_again():
    vlm = script(
        "What is he thinking?",
        {
            "What is he thinking?": "QUESTION: What is his name?",
            "What is his name?": "QUESTION: How many people are there?",
        },
    )
    out = run(vlm, max_regenerations=2)
    assert kept(out) == [
        (
            "r0-q0",
            "How many people are there?",
            "regenerated",
            ["What is he thinking?", "What is his name?", "How many people are there?"],
        )
    ]
    assert len(check_calls(vlm)) == 2


@pytest.mark.parametrize("regenerations", [0, 1, 3])
def test_a_question_that_never_passes_is_dropped_after_max_regenerations(regenerations):
    counter = iter(range(100))
    vlm = ScriptedVLM(lambda p, k: "What is it?" if p.text == ASK_PROMPT else f"QUESTION: Name {next(counter)}.")
    out = run(vlm, max_regenerations=regenerations)
    assert drops(out) == [("r0-q0", "unusable_question"), ("r0", "no_question")]
    attempts = ["What is it?", *[f"Name {i}." for i in range(regenerations + 1)]]
    assert out[0].row["question_attempts"] == attempts
    assert "does not end with '?'" in out[0].detail and out[1].detail == "all 1 question(s) failed the check"
    assert len(check_calls(vlm)) == regenerations + 1


def test_the_check_standing_by_a_failing_rewrite_ends_the_loop():
    vlm = script("What is he thinking?", {"What is he thinking?": "QUESTION: What is his name?"})
    out = run(vlm, max_regenerations=5)
    assert drops(out) == [("r0-q0", "unusable_question"), ("r0", "no_question")]
    assert len(check_calls(vlm)) == 2


def test_questions_rewritten_into_one_are_kept_once_and_failures_do_not_hide_the_rest():
    vlm = script(
        "Is it day? Is it night? Who is it?",
        {"Is it night?": "QUESTION: Is it day?", "Who is it?": "QUESTION: What is her name?"},
    )
    out = run(vlm, questions_per_image=3, max_regenerations=0)
    assert kept(out) == [("r0-q0", "Is it day?", "self_question", ["Is it day?"])]
    assert drops(out) == [("r0-q2", "unusable_question")]


def test_checks_run_batched_over_every_pending_question_of_the_batch():
    vlm = script("Is it day?", {"Is it day?": "QUESTION: What is the name?", "What is the name?": "QUESTION: Why?"})
    out = run(vlm, [row(0), row(1), row(2)], max_regenerations=1)
    assert [q for _, q, _, _ in kept(out)] == ["Why?"] * 3
    assert [len(call["prompts"]) for call in vlm.calls] == [3, 3, 3]  # ask, check, check again


# ---------------------------------------------------------------------------------------------- tiny LLaVA


def test_self_question_on_tiny_llava_checks_with_the_image_and_ignores_batching(tiny_llava):
    rows = textured_rows()
    params = dict(
        questions_per_image=2, max_new_tokens=6, banned_words=[], require_question_mark=False, max_regenerations=0
    )
    out = run(tiny_llava, rows, **params)
    assert {r["row_id"].split("-")[0] for r in out if not isinstance(r, Drop)} == {"r0", "r1", "r2"}
    alone = []
    for r in rows:
        vlm = Recording(tiny_llava)
        alone += run(vlm, [r], **params)
        greedy, sampled, *checks = vlm.prompts  # the first question greedy, the second sampled, then checks
        assert [p.text for p in greedy + sampled] == [ASK_PROMPT] * 2 and checks
        for prompt in (p for call in checks for p in call):
            assert "check whether this QUESTION" in prompt.text
            [seen] = prompt.images
            assert same_pixels(seen, decode_image(r["image"]))
    assert out == alone


def test_description_rows_ask_for_a_seeded_concise_description_beside_the_questions():
    from prefgen.stages.generate.self_question import DESCRIPTION_PROMPTS

    rows = [row(i) for i in range(4)]
    out = run(script("Is it day?"), rows=rows, check=False, description_row=True)
    descriptions = [r for r in out if not isinstance(r, Drop) and r["question_source"] == "description"]
    assert [r["row_id"] for r in descriptions] == ["r0-d", "r1-d", "r2-d", "r3-d"]
    assert all(r["question"] in DESCRIPTION_PROMPTS and r["question_attempts"] == [] for r in descriptions)
    again = run(script("Is it day?"), rows=[row(i) for i in range(4)][::-1], check=False, description_row=True)
    assert {r["row_id"]: r["question"] for r in again if not isinstance(r, Drop)} == {
        r["row_id"]: r["question"] for r in out if not isinstance(r, Drop)
    }
    [only] = [r for r in run(script("A cat."), check=False, description_row=True)]
    assert not isinstance(only, Drop) and only["question_source"] == "description"  # the image still gets a row
