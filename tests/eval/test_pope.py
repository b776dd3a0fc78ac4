"""POPE scored as its official script scores it, on the fixtures of conftest.py (counts worked out there)."""

import json

import pytest

from prefgen.core.errors import PrefgenError
from prefgen.eval.pope import RULE, evaluate_answers, evaluate_model, read_questions, says_yes


@pytest.mark.parametrize(
    ("answer", "yes"),
    [
        ("No, there is not.", False),
        ("There is no dog.", False),
        ("Yes.", True),
        ("I cannot tell.", True),
        ("", True),
        ("Yes, but not a big one.", False),
        ("Yes. There is not a cat.", True),  # only the first sentence counts
        ("NO", True),  # case-sensitive, as the official script
        ("Not really", True),
        ("nope", True),
    ],
)
def test_official_parse_rule(answer, yes):
    assert says_yes(answer) is yes


def test_pope_metrics_per_file_and_mean_f1(pope_files):
    random_q, popular_q, answers = pope_files
    result = evaluate_answers([answers], [random_q, popular_q])
    assert result["rule"] == RULE
    random = result["splits"]["coco_pope_random"]
    # random: TP 2 (1, 4), TN 2 (2, 3), FP 1 (5), FN 1 (6); question 7's label is unknown, question 8 unanswered
    assert (random["tp"], random["tn"], random["fp"], random["fn"]) == (2, 2, 1, 1)
    assert random["accuracy"] == 4 / 6 and random["precision"] == 2 / 3 and random["recall"] == 2 / 3
    assert random["f1"] == pytest.approx(2 / 3) and random["yes_ratio"] == 0.5
    assert (random["n"], random["missing"], random["unknown_label"]) == (6, 1, 1)
    popular = result["splits"]["coco_pope_popular"]
    # popular: TP 1 (101), FP 1 (102, "NO"), FN 1 (103): precision 1/2, recall 1/2, F1 1/2, yes-ratio 2/3
    assert (popular["accuracy"], popular["precision"], popular["recall"], popular["f1"]) == (1 / 3, 0.5, 0.5, 0.5)
    assert popular["yes_ratio"] == 2 / 3 and popular["missing"] == 0
    assert result["mean_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert (result["unknown_ids"], result["duplicate_answers"]) == (1, 1)  # id 42; the second answer to 1


def test_answers_are_joined_on_ids_not_position(pope_files, tmp_path):
    random_q, _, answers = pope_files
    lines = answers.read_text().splitlines()
    (tmp_path / "shuffled.jsonl").write_text("\n".join(reversed(lines[:6])) + "\n")
    result = evaluate_answers([tmp_path / "shuffled.jsonl"], [random_q])
    # the reversed file holds the same six answers: only questions 7 (unknown label) and 8 lack one
    assert result["splits"]["coco_pope_random"]["accuracy"] == 4 / 6
    assert result["splits"]["coco_pope_random"]["missing"] == 1


def test_one_answers_file_per_question_file_when_ids_repeat(pope_files, tmp_path):
    random_q, _, answers = pope_files
    again = tmp_path / "again" / "coco_pope_adversarial.jsonl"
    again.parent.mkdir()
    again.write_text(random_q.read_text())
    with pytest.raises(PrefgenError, match="question_id 1 is in both .*give one --answers file per --questions file"):
        evaluate_answers([answers], [random_q, again])
    result = evaluate_answers([answers, answers], [random_q, again])
    assert result["splits"]["coco_pope_adversarial"] == result["splits"]["coco_pope_random"]
    assert result["mean_f1"] == pytest.approx(2 / 3) and result["duplicate_answers"] == 2
    with pytest.raises(PrefgenError, match=r"give one --answers file, or one per --questions file \(2\), not 3"):
        evaluate_answers([answers] * 3, [random_q, again])


def test_bad_pope_input_fails_naming_file_and_line(pope_files, tmp_path):
    random_q, _, answers = pope_files
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": 1, "text": "Yes"}\n{"question": "Is there a dog?", "answer": "yes"}\n')
    with pytest.raises(PrefgenError, match=r"bad.jsonl:2: no question_id \(answers are joined to questions on it\)"):
        evaluate_answers([bad], [random_q])
    bad.write_text('{"question_id": 1, "text": "Yes"}\n{"question_id": 2, "text": "Yes"')
    with pytest.raises(PrefgenError, match=r"bad.jsonl:2: malformed JSON"):
        evaluate_answers([bad], [random_q])
    bad.write_text(json.dumps({"image": "a.jpg", "text": "Is there a dog?", "label": "yes"}) + "\n")
    with pytest.raises(PrefgenError, match=r"bad.jsonl:1: no question_id"):
        read_questions(bad)


def test_duplicate_questions_are_counted(tmp_path):
    path = tmp_path / "q.jsonl"
    line = {"question_id": 5, "image": "a.jpg", "text": "Is there a dog?", "label": "yes"}
    path.write_text(json.dumps(line) + "\n" + json.dumps({**line, "label": "no"}) + "\n")
    questions = read_questions(path)
    assert questions.items[5][0] is True and questions.skipped == {"duplicate_questions": 1}


def test_model_answers_every_question_of_every_file(pope_files, coco):
    random_q, popular_q, _ = pope_files
    files = [read_questions(random_q), read_questions(popular_q)]
    asked = []

    def answer(images, questions):
        asked.extend(questions)
        return ["Yes" if int(q.split()[-1][:-1]) % 2 else "No" for q in questions]

    result = evaluate_model(answer, files, coco / "images", limit=2)
    assert asked == ["Is there a dog 1?", "Is there a dog 2?", "Is there a dog 101?", "Is there a dog 102?"]
    # random 1 (yes, "Yes") TP, 2 (no, "No") TN; popular 101 (yes) TP, 102 (no) TN: both perfect
    assert result["mean_f1"] == 1.0 and result["splits"]["coco_pope_random"]["n"] == 2
    assert result["given"]["coco_pope_popular"] == [
        {"question_id": 101, "text": "Yes"},
        {"question_id": 102, "text": "No"},
    ]


def test_ids_written_as_text_join_their_numbers(pope_files, tmp_path):
    random_q, _, answers = pope_files
    lines = [json.loads(line) for line in answers.read_text().splitlines()]
    (tmp_path / "text_ids.jsonl").write_text(
        "".join(json.dumps({**a, "question_id": str(a["question_id"])}) + "\n" for a in lines)
    )
    same = evaluate_answers([tmp_path / "text_ids.jsonl"], [random_q])["splits"]["coco_pope_random"]
    assert same == evaluate_answers([answers], [random_q])["splits"]["coco_pope_random"]
