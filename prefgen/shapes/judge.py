"""The ground-truth judge of answers and preference pairs on shapes scenes, one rule per kind of prompt.

Questions the world can answer are judged by **correctness** against the scene, whatever else the answer says:

- ``presence``: "is there a red circle in the image?" -> yes / no
- ``colour``: "what color is the square?" (one colour of that shape in the scene) -> the colour
- ``shape``: "what shape is the red object?" (one shape of that colour) -> the shape
- ``count``: "how many objects are there?" -> the number; "how many circles are there?" / "how many red objects
  are there?" -> the number of those

A world question the scene does not settle (the colour of a shape shown in two colours, or of an absent one) has
no single right answer: its pairs are judged like descriptions and reported apart (``colour_unsettled``).
Descriptions ("Describe the image.") and any other prompt are judged by hallucinated objects, then by objects named
right (recall).

A pair of answers to a world question is *better* when the chosen answer is right and the rejected wrong, *worse*
the other way round and a *tie* when both are right or both wrong: an answer of "two." to a colour question is
wrong however few objects it hallucinates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from prefgen.shapes.language import NUMBERS
from prefgen.shapes.mentions import COLOUR_WORDS, SHAPE_WORDS, judge, mentioned_kinds, tokens
from prefgen.shapes.world import Scene

KINDS_OF_PROMPT = ("presence", "colour", "shape", "count", "description")
REPORTED_KINDS = (*KINDS_OF_PROMPT[:-1], *(f"{k}_unsettled" for k in KINDS_OF_PROMPT[:-1]), "description")
_SHAPE_OF_COLOUR = re.compile(r"^what shape is the (\w+) (?:object|one|thing)\b")
_COUNT = re.compile(r"^how many (.*?)\s*(?:are there|can you see|do you see|are in|is there)\b")


def first_line(question: str) -> str:
    """The question without the instructions appended to it (the short-answer suffix), lower case."""
    return question.strip().split("\n")[0].strip().lower()


def question_kind(question: str | None) -> str:
    """Which rule judges answers to ``question``: one of ``KINDS_OF_PROMPT``."""
    asked = first_line(question or "")
    if asked.startswith(("is there", "are there")) and len(mentioned_kinds(asked)) == 1:
        return "presence"
    if asked.startswith(("what color is the", "what colour is the")):
        return "colour"
    if _SHAPE_OF_COLOUR.match(asked):
        return "shape"
    if _COUNT.match(asked):
        return "count"
    return "description"


def right_answer(question: str, scene: Scene) -> str | None:
    """The one right answer to a world question about ``scene`` (a word: "yes", "red", "circle", "three"), or None
    when the question is not a world question or the scene does not settle it."""
    asked, kind = first_line(question), question_kind(question)
    if kind == "presence":
        colour, shape = next(iter(mentioned_kinds(asked)))
        if colour is None:
            return "yes" if any(s == shape for _, s in scene.kinds) else "no"
        return "yes" if (colour, shape) in scene.kinds else "no"
    if kind == "colour":
        shapes = {SHAPE_WORDS[w] for w in tokens(asked) if w in SHAPE_WORDS}
        colours = {c for c, s in scene.kinds if s in shapes}
        return next(iter(colours)) if len(shapes) == 1 and len(colours) == 1 else None
    if kind == "shape":
        colour = COLOUR_WORDS.get(_SHAPE_OF_COLOUR.match(asked).group(1))
        shapes = {s for c, s in scene.kinds if c == colour}
        return next(iter(shapes)) if colour and len(shapes) == 1 else None
    if kind == "count":
        return NUMBERS[_count(_COUNT.match(asked).group(1), scene)]
    return None


def _count(what: str, scene: Scene) -> int:
    """How many objects ``what`` ("objects", "circles", "red objects", "red circles") covers in the scene."""
    words = tokens(what)
    colours = {COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS}
    shapes = {SHAPE_WORDS[w] for w in words if w in SHAPE_WORDS}
    return sum((not colours or o.colour in colours) and (not shapes or o.shape in shapes) for o in scene.objects)


def said(answer: str, kind: str) -> str | None:
    """What an answer says, read the way its question kind needs: the first yes/no, colour, shape or number."""
    words = tokens(answer)
    if kind == "presence":
        first = tokens(answer.strip().split(".")[0])
        return ("no" if {"no", "not"} & set(first) else "yes") if first else None
    table = {"colour": COLOUR_WORDS, "shape": SHAPE_WORDS}.get(kind)
    if table is not None:
        return next((table[w] for w in words if w in table), None)
    if kind == "count":
        for w in words:
            if w.isdigit() and int(w) < len(NUMBERS):
                return NUMBERS[int(w)]
            if w in NUMBERS:
                return w
            if w in ("a", "an", "single"):
                return "one"
    return None


def answer_correct(question: str, answer: str, scene: Scene) -> bool | None:
    """Whether ``answer`` is right; None when the question has no single right answer in this scene."""
    right = right_answer(question, scene)
    return None if right is None else said(answer, question_kind(question)) == right


def pair_verdict(chosen: str, rejected: str, scene: Scene, question: str | None = None) -> int:
    """+1 when chosen is truly better, 0 a tie, -1 worse (see the module docstring for the rules)."""
    if question and right_answer(question, scene) is not None:
        right = answer_correct(question, chosen, scene), answer_correct(question, rejected, scene)
        return (right[0] and not right[1]) - (right[1] and not right[0])
    a, b = judge(chosen, scene.kinds), judge(rejected, scene.kinds)
    key_a, key_b = (-len(a.hallucinated), len(a.hits)), (-len(b.hallucinated), len(b.hits))
    return (key_a > key_b) - (key_a < key_b)


def judged_kind(question: str | None, scene: Scene) -> str:
    """The kind a pair is reported under: its question's kind, with ``_unsettled`` when the scene has no single
    right answer to it."""
    kind = question_kind(question)
    if kind == "description" or right_answer(question, scene) is not None:
        return kind
    return f"{kind}_unsettled"


def reward_accuracy(pairs: Iterable[tuple]) -> dict:
    """Pair accuracy against ground truth, length bias, and the verdicts per kind of prompt, over
    (scene, chosen, rejected[, question]) tuples. For world questions, ``chosen_correct`` / ``rejected_correct``
    count right answers; for descriptions, ``chosen_hallucinated`` / ``rejected_hallucinated`` count answers naming
    an absent object."""
    verdicts, mentions, words = [], [], []
    kinds: dict[str, dict] = {}
    for scene, chosen, rejected, *rest in pairs:
        question = rest[0] if rest else None
        verdict = pair_verdict(chosen, rejected, scene, question)
        verdicts.append(verdict)
        a, b = judge(chosen, scene.kinds), judge(rejected, scene.kinds)
        mentions.append((a.n_mentions, b.n_mentions))
        words.append((len(chosen.split()), len(rejected.split())))
        kind = judged_kind(question, scene)
        row = kinds.setdefault(kind, {"pairs": 0, "better": 0, "tie": 0, "worse": 0})
        row["pairs"] += 1
        row[{1: "better", 0: "tie", -1: "worse"}[verdict]] += 1
        if kind not in KINDS_OF_PROMPT[:-1]:
            row["chosen_hallucinated"] = row.get("chosen_hallucinated", 0) + bool(a.hallucinated)
            row["rejected_hallucinated"] = row.get("rejected_hallucinated", 0) + bool(b.hallucinated)
        else:
            row["chosen_correct"] = row.get("chosen_correct", 0) + bool(answer_correct(question, chosen, scene))
            row["rejected_correct"] = row.get("rejected_correct", 0) + bool(answer_correct(question, rejected, scene))
    n = len(verdicts)
    better, worse = verdicts.count(1), verdicts.count(-1)
    m, w = np.array(mentions or [(0, 0)], float), np.array(words or [(0, 0)], float)
    return {
        "pairs": n,
        "better": better,
        "tie": verdicts.count(0),
        "worse": worse,
        "accuracy": _ratio(better, n),
        "accuracy_decided": _ratio(better, better + worse),
        "mean_mentions_chosen": float(m[:, 0].mean()),
        "mean_mentions_rejected": float(m[:, 1].mean()),
        "mean_words_chosen": float(w[:, 0].mean()),
        "mean_words_rejected": float(w[:, 1].mean()),
        "chosen_more_mentions": _ratio(int((m[:, 0] > m[:, 1]).sum()), n),
        "chosen_longer": _ratio(int((w[:, 0] > w[:, 1]).sum()), n),
        "by_kind": {k: kinds[k] for k in REPORTED_KINDS if k in kinds},
    }


def _ratio(a: float, b: float) -> float:
    return float(a) / b if b else 0.0
