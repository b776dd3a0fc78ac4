"""POPE as its official script scores it (AoiDragon/POPE ``evaluate.py``; LLaVA's ``llava/eval/eval_pope.py`` is
the same rule), with answers joined to questions on ``question_id``, never by position.

- Question files: one ``{"question_id", "image", "text", "label"}`` a line (the released ``coco_pope_*.json`` are
  JSON lines despite the name); label "yes" or "no" (any case; the official script takes anything but "no" as
  yes, here anything else is counted as ``unknown_label`` and left out).
- Answer files: one ``{"question_id", "text"}`` a line (LLaVA's answer files; ``"answer"`` is read too).
- The rule (``RULE``): keep the text before the first ".", delete commas, split on spaces; the answer is no if a
  word is exactly "No", "no" or "not", else yes. So "I cannot tell." and an empty answer count as yes, and so does
  "NO": the official script is case-sensitive and so is this.
- Per question file: accuracy, precision, recall, F1 (yes is the positive class) and yes-ratio (share of answers
  parsed as yes); ``mean_f1`` is the mean F1 over the files, the number LLaVA-1.5 and CSR report as "POPE".
- Nothing is dropped silently: questions with no answer (``missing``), unknown labels (``unknown_label``), repeated
  question ids (``duplicate_questions``, the first kept), answers given twice (``duplicate_answers``, the first
  kept) and answers to no question (``unknown_ids``) are counted in the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prefgen.core.errors import PrefgenError
from prefgen.eval.files import read_records

RULE = (
    "POPE's official rule: text before the first '.', commas removed, split on spaces; "
    "'No', 'no' or 'not' among the words -> no, anything else (empty answers too) -> yes"
)


def says_yes(answer: str) -> bool:
    """The official parse of one answer (see ``RULE``)."""
    words = answer.split(".")[0].replace(",", "").split(" ")
    return not ({"No", "no", "not"} & set(words))


@dataclass
class Questions:
    """One question file: question id -> (label, image, text), and what could not be used."""

    path: Path
    items: dict = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    seen: set = field(default_factory=set)  # every question id of the file, those skipped too

    @property
    def name(self) -> str:
        return self.path.stem


def question_key(value):
    """Question ids as the join sees them: 12 and "12" are one question (files written by different tools)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) else str(value)


def read_questions(path: str | Path) -> Questions:
    found = Questions(Path(path))
    for number, record in read_records(path):
        if "question_id" not in record:
            raise PrefgenError(f"{path}:{number}: no question_id")
        key = question_key(record["question_id"])
        found.seen.add(key)
        label = str(record.get("label", "")).strip().lower()
        if label not in ("yes", "no"):
            found.skipped["unknown_label"] += 1
        elif key in found.items:
            found.skipped["duplicate_questions"] += 1
        else:
            found.items[key] = (label == "yes", record.get("image"), record.get("text"))
    return found


def read_answers(path: str | Path) -> tuple[dict, Counter]:
    """question id -> answer text, and the count of ids answered twice (the first answer kept)."""
    answers, skipped = {}, Counter()
    for number, record in read_records(path):
        if "question_id" not in record:
            raise PrefgenError(f"{path}:{number}: no question_id (answers are joined to questions on it)")
        text = record.get("text", record.get("answer"))
        if not isinstance(text, str):
            raise PrefgenError(f"{path}:{number}: no answer text (a string under 'text' or 'answer')")
        key = question_key(record["question_id"])
        if key in answers:
            skipped["duplicate_answers"] += 1
        else:
            answers[key] = text
    return answers, skipped


def split_metrics(questions: Questions, answers: dict) -> dict:
    """The official metrics of one question file against answers keyed by question id."""
    tp = fp = tn = fn = missing = 0
    for key, (label, _, _) in questions.items.items():
        if key not in answers:
            missing += 1
            continue
        yes = says_yes(answers[key])
        tp, fp = tp + (yes and label), fp + (yes and not label)
        tn, fn = tn + (not yes and not label), fn + (not yes and label)
    n = tp + fp + tn + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "yes_ratio": (tp + fp) / n if n else 0.0,
        "n": n,
        "missing": missing,
        **{"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        **dict(questions.skipped),
    }


def score(files: Sequence[Questions], answers: dict, skipped: Counter | None = None) -> dict:
    """``{"rule", "splits": {file stem: metrics}, "mean_f1", ...counts}`` of answers to several question files.
    Question ids must not repeat across files (answer each of POPE's files separately, or use LLaVA's combined
    file whose ids are unique)."""
    owner: dict = {}
    for questions in files:
        for key in questions.items:
            if key in owner:
                raise PrefgenError(
                    f"question_id {key!r} is in both {owner[key]} and {questions.path}: answers cannot be joined; "
                    "give one --answers file per --questions file"
                )
            owner[key] = questions.path
    names = [q.name for q in files]
    if len(set(names)) < len(names):
        raise PrefgenError(f"two question files share a name ({', '.join(names)}): rename one")
    splits = {q.name: split_metrics(q, answers) for q in files}
    return {
        "rule": RULE,
        "splits": splits,
        "mean_f1": sum(s["f1"] for s in splits.values()) / len(splits),
        "unknown_ids": sum(not any(key in q.seen for q in files) for key in answers),
        **dict(skipped or {}),
    }


def evaluate_answers(answers: Sequence[str | Path], questions: Sequence[str | Path]) -> dict:
    """``prefgen eval --bench pope --answers A.jsonl [...] --questions Q.jsonl [...]``: one answers file for all
    question files, or one per question file (in the same order)."""
    if len(answers) not in (1, len(questions)):
        raise PrefgenError(
            f"give one --answers file, or one per --questions file ({len(questions)}), not {len(answers)}"
        )
    files = [read_questions(path) for path in questions]
    if len(answers) == 1:
        found, skipped = read_answers(answers[0])
        return {"bench": "pope", "answers": [str(answers[0])], **score(files, found, skipped)}
    report = combine([score([q], *read_answers(a)) for q, a in zip(files, answers)])
    return {"bench": "pope", "answers": [str(a) for a in answers], **report}


def combine(parts: Sequence[dict]) -> dict:
    """One result of several ``score`` results, each of its own question files: their splits, the mean F1 over
    all of them, the counts summed."""
    splits = {name: values for part in parts for name, values in part["splits"].items()}
    if len(splits) < sum(len(part["splits"]) for part in parts):
        raise PrefgenError("two question files share a name: rename one")
    counts: Counter = Counter()
    for part in parts:
        counts.update({k: v for k, v in part.items() if isinstance(v, int)})
    return {"rule": RULE, "splits": splits, "mean_f1": sum(s["f1"] for s in splits.values()) / len(splits), **counts}


Answer = Callable[[list, list[str]], list[str]]


def evaluate_model(
    answer: Answer, questions: Sequence[Questions], images: str | Path, limit: int | None = None, batch_size: int = 32
) -> dict:
    """POPE of a VLM (``answer(images, questions) -> texts``) on the first ``limit`` questions of each file (all
    when None), with the answers it gave."""
    from prefgen.eval.chair import open_image

    parts, given = [], {}
    for full in questions:
        part = Questions(full.path, dict(list(full.items.items())[:limit]), full.skipped, full.seen)
        found, keys = {}, list(part.items)
        for start in range(0, len(keys), batch_size):
            chunk = keys[start : start + batch_size]
            pictures = [open_image(Path(images) / str(part.items[k][1])) for k in chunk]
            found.update(zip(chunk, answer(pictures, [str(part.items[k][2]) for k in chunk])))
        parts.append(score([part], found))
        given[part.name] = [{"question_id": k, "text": t} for k, t in found.items()]
    return {**combine(parts), "given": given}
