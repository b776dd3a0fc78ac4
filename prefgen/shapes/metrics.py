"""Hallucination metrics with exact ground truth: CHAIR, POPE, reward accuracy of preference pairs, CLIP AUC.

Models come in as plain callables, so anything can be evaluated without special cases:
``describe(images) -> texts`` for CHAIR and ``answer(images, questions) -> texts`` for POPE. ``vlm_describer`` and
``vlm_answerer`` wrap a ``prefgen.models.VLM``; a CLIP is anything with ``image_embeddings`` and
``text_embeddings`` (``prefgen.models.ClipScorer``).

- CHAIR_s: share of captions with at least one hallucinated object. CHAIR_i: hallucinated / all mentions, counting
  each distinct object once per caption. Recall: share of ground-truth kinds named (with their colour).
  CHAIR counts objects only; three more shares judge the whole description (``describe_verdict``): well-formed
  (every sentence one the world's grammar says, none repeated), a wrong count said ("two red circles" for one), and
  right (well-formed, every object named with its count, nothing absent).
- POPE: yes/no presence questions, half about present objects, half about absent ones chosen at random, among the
  most frequent training objects (popular) or among the absent prior companions and look-alikes (adversarial).
  Each split also reports the yes-rate per tier of absent object (``NEGATIVE_TIERS``); ``companion_yes`` is the
  prior's share in answers, as ``companion_rate`` is in descriptions.
(The ground-truth judge of answers and preference pairs is ``judge.py``.)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from prefgen.models.prompts import Prompt
from prefgen.shapes.language import absent_companions, absent_kinds, confusable_kinds, phrase, presence_question
from prefgen.shapes.mentions import judge, parse_mentions, tokens
from prefgen.shapes.world import COMPANION, KINDS, TRIGGER, Scene, render, train_kinds

Describe = Callable[[list], list[str]]
Answer = Callable[[list, list[str]], list[str]]
DESCRIBE_PROMPT = "Describe the image."
POPE_SPLITS = ("random", "popular", "adversarial")


# ------------------------------------------------------------------------------------------------ CHAIR

# a sentence of the world's descriptions: "There is a red circle." / "There are two red circles next to them."
_SENTENCE = re.compile(r"there (is an? [a-z]+ [a-z]+|are [a-z]+ [a-z]+ [a-z]+)( next to (it|them))?\.")


def describe_verdict(text: str, scene: Scene) -> dict[str, bool]:
    """A description judged whole: ``well_formed`` (each sentence is one the world's grammar says, naming one
    object kind, and none is repeated), ``count_wrong`` (it says how many of a present kind there are, wrongly),
    ``right`` (well-formed, every kind there named once with its count, nothing absent named)."""
    sentences = [s.strip() for s in re.split(r"(?<=\.)\s+", text.strip().lower()) if s.strip()]
    mentions = [m for m in parse_mentions(text) if not m.negated]
    well_formed = (
        bool(sentences)
        and len(set(sentences)) == len(sentences)
        and all(_SENTENCE.fullmatch(s) and len(parse_mentions(s)) == 1 for s in sentences)
    )
    counts = Counter(obj.kind for obj in scene.objects)
    count_wrong = any(m.count is not None and m.kind in counts and m.count != counts[m.kind] for m in mentions)
    named = Counter(m.kind for m in mentions)
    right = well_formed and not count_wrong and named == Counter(dict.fromkeys(counts, 1))
    return {"well_formed": well_formed, "count_wrong": count_wrong, "right": right}


def chair(texts: Sequence[str], scenes: Sequence[Scene]) -> dict:
    """CHAIR_s, CHAIR_i, recall and the prior's share of hallucinations, of ``texts[i]`` describing ``scenes[i]``."""
    if len(texts) != len(scenes):
        raise ValueError("give one text per scene")
    bad_captions = mentions = hallucinated = hits = truth = 0
    companion_said = companion_cases = other_said = other_cases = 0
    whole: Counter = Counter()
    for text, scene in zip(texts, scenes):
        whole.update(key for key, value in describe_verdict(text, scene).items() if value)
        verdict = judge(text, scene.kinds)
        bad_captions += bool(verdict.hallucinated)
        mentions += verdict.n_mentions
        hallucinated += len(verdict.hallucinated)
        hits += len(verdict.hits)
        truth += len(scene.kinds)
        companions = set(absent_companions(scene))
        companion_cases += len(companions)
        companion_said += len(companions & verdict.hallucinated)
        others = set(absent_kinds(scene)) - companions
        other_cases += len(others)
        other_said += len(others & verdict.hallucinated)
    n = len(texts)
    return {
        "captions": n,
        "chair_s": _ratio(bad_captions, n),
        "chair_i": _ratio(hallucinated, mentions),
        "recall": _ratio(hits, truth),
        "mean_mentions": _ratio(mentions, n),
        # how often an absent companion is named vs. any other absent kind: the prior's pull, measured
        "companion_rate": _ratio(companion_said, companion_cases),
        "other_absent_rate": _ratio(other_said, other_cases),
        "well_formed": _ratio(whole["well_formed"], n),
        "count_wrong": _ratio(whole["count_wrong"], n),
        "right": _ratio(whole["right"], n),
    }


# ------------------------------------------------------------------------------------------------ POPE


def parse_yes_no(text: str) -> bool:
    """POPE's rule: "no", "not" (or an empty answer) in the first sentence means no, anything else yes."""
    first = text.strip().split(".")[0]
    words = tokens(first)
    return bool(words) and not ({"no", "not"} & set(words))


def pope_metrics(labels: Sequence[bool], answers: Sequence[str | bool]) -> dict:
    """Accuracy, precision, recall, F1 (yes = positive) and the share of yes answers."""
    said = np.array([a if isinstance(a, bool) else parse_yes_no(a) for a in answers], bool)
    truth = np.array(labels, bool)
    tp, fp = int((said & truth).sum()), int((said & ~truth).sum())
    fn, tn = int((~said & truth).sum()), int((~said & ~truth).sum())
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "questions": len(truth),
        "accuracy": _ratio(tp + tn, len(truth)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": _ratio(int(said.sum()), len(truth)),
    }


@lru_cache(maxsize=4)
def training_frequencies(n: int = 20000, seed: int = 1234) -> tuple[tuple[str, str], ...]:
    """Kinds from most to least frequent under the training prior (sampled; companions come first)."""
    counts: Counter = Counter()
    rng = np.random.default_rng(seed)
    for _ in range(n):
        counts.update(set(train_kinds(rng)))
    return tuple(sorted(KINDS, key=lambda k: (-counts[k], k)))


def pope_questions(scenes: Sequence[Scene], split: str, seed: int = 0, per_scene: int = 3) -> list[dict]:
    """Balanced questions: up to ``per_scene`` present kinds (label yes) and as many absent ones (label no). Each
    question says what it asks about (``tier``): ``present``, or for an absent kind one of ``NEGATIVE_TIERS``."""
    if split not in POPE_SPLITS:
        raise ValueError(f"POPE split must be one of {', '.join(POPE_SPLITS)}")
    rng = np.random.default_rng([seed, POPE_SPLITS.index(split)])
    out = []
    for i, scene in enumerate(scenes):
        present = sorted(scene.kinds)
        present = [present[j] for j in rng.permutation(len(present))[:per_scene]]
        negatives = _negatives(scene, split, rng)[: len(present)]
        for kind, label in [(k, True) for k in present] + [(k, False) for k in negatives]:
            out.append(
                {
                    "scene": i,
                    "question": presence_question(kind),
                    "label": label,
                    "object": phrase(kind),
                    "tier": negative_tier(scene, kind) if not label else "present",
                }
            )
    return out


# What an absent kind is to a scene, from the prior's strongest pull to none: the companion of a trigger that is
# there, the trigger of a companion that is there, a look-alike (a present colour or shape), anything else.
NEGATIVE_TIERS = ("companion", "trigger", "look-alike", "other")


def negative_tier(scene: Scene, kind: tuple[str, str]) -> str:
    if kind in absent_companions(scene):
        return "companion"
    if kind in COMPANION and COMPANION[kind] in scene.kinds:
        return "trigger"
    if kind in confusable_kinds(scene):
        return "look-alike"
    return "other"


def _negatives(scene: Scene, split: str, rng: np.random.Generator) -> list[tuple[str, str]]:
    absent = absent_kinds(scene)
    if split == "random":
        return [absent[j] for j in rng.permutation(len(absent))]
    if split == "popular":
        return [k for k in training_frequencies() if k in set(absent)]
    # adversarial: absent companions of present triggers, absent triggers of present companions, then look-alikes
    present = scene.kinds
    tiers = [
        absent_companions(scene),
        sorted(t for c, t in TRIGGER.items() if c in present and t not in present),
        confusable_kinds(scene),
        absent,
    ]
    ordered: list[tuple[str, str]] = []
    for tier in tiers:
        ordered += [k for k in (tier[j] for j in rng.permutation(len(tier))) if k not in ordered]
    return ordered


# ------------------------------------------------------------------------------------------------ running models


def vlm_describer(vlm, prompt: str = DESCRIBE_PROMPT, max_new_tokens: int = 48) -> Describe:
    """``describe(images)`` with greedy decoding on a ``prefgen.models.VLM``."""

    def describe(images: list) -> list[str]:
        found = vlm.generate([Prompt(prompt, image) for image in images], max_new_tokens=max_new_tokens)
        return [candidates[0].text for candidates in found]

    return describe


def vlm_answerer(vlm, suffix: str = "", max_new_tokens: int = 8) -> Answer:
    """``answer(images, questions)`` with greedy decoding; ``suffix`` is appended to each question."""

    def answer(images: list, questions: list[str]) -> list[str]:
        prompts = [Prompt(question + suffix, image) for image, question in zip(images, questions)]
        return [candidates[0].text for candidates in vlm.generate(prompts, max_new_tokens=max_new_tokens)]

    return answer


def run_chair(describe: Describe, scenes: Sequence[Scene], batch_size: int = 64) -> tuple[dict, list[str]]:
    texts: list[str] = []
    for start in range(0, len(scenes), batch_size):
        texts += describe([render(s) for s in scenes[start : start + batch_size]])
    return chair(texts, scenes), texts


def run_pope(answer: Answer, scenes: Sequence[Scene], seed: int = 0, per_scene: int = 3, batch_size: int = 64) -> dict:
    """POPE metrics per split, plus the answers given."""
    images = [render(s) for s in scenes]
    results = {}
    for split in POPE_SPLITS:
        questions = pope_questions(scenes, split, seed, per_scene)
        answers: list[str] = []
        for start in range(0, len(questions), batch_size):
            chunk = questions[start : start + batch_size]
            answers += answer([images[q["scene"]] for q in chunk], [q["question"] for q in chunk])
        results[split] = pope_metrics([q["label"] for q in questions], answers)
        results[split]["negatives"] = _by_tier(questions, answers)
        # the prior in answers, as CHAIR's companion_rate is in descriptions: "yes" to an absent companion
        results[split]["companion_yes"] = results[split]["negatives"].get("companion", {}).get("yes_ratio", 0.0)
    return results


def _by_tier(questions: Sequence[dict], answers: Sequence[str]) -> dict:
    """Per kind of absent object asked about: how many questions and the share answered yes (each one wrong)."""
    asked: Counter = Counter()
    yes: Counter = Counter()
    for question, answer in zip(questions, answers):
        if not question["label"]:
            asked[question["tier"]] += 1
            yes[question["tier"]] += parse_yes_no(answer)
    return {
        tier: {"questions": asked[tier], "yes_ratio": _ratio(yes[tier], asked[tier])}
        for tier in NEGATIVE_TIERS
        if asked[tier]
    }


# ------------------------------------------------------------------------------------------------ CLIP


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(positive scores above negative), ties counting half (the Mann-Whitney statistic)."""
    pos, neg = np.asarray(positives, float), np.sort(np.asarray(negatives, float))
    if not len(pos) or not len(neg):
        return float("nan")
    below = np.searchsorted(neg, pos, "left")
    equal = np.searchsorted(neg, pos, "right") - below
    return float((below + 0.5 * equal).sum() / (len(pos) * len(neg)))


def clip_auc(scorer, scenes: Sequence[Scene], images: Sequence | None = None) -> dict:
    """AUC of present vs absent single-object phrases: against all absent kinds, absent prior companions, absent
    kinds with the colour of a present object (so another shape: the negatives a colour-only CLIP cannot reject),
    and absent kinds with the shape of a present object."""
    images = list(images) if images is not None else [render(s) for s in scenes]
    sims = (scorer.image_embeddings(images) @ scorer.text_embeddings([phrase(k) for k in KINDS]).T).numpy()
    groups: dict[str, list[float]] = {
        "positive": [],
        "overall": [],
        "companion": [],
        "same_colour": [],
        "same_shape": [],
    }
    index = {k: i for i, k in enumerate(KINDS)}
    for row, scene in zip(sims, scenes):
        present = scene.kinds
        colours, shapes = {c for c, _ in present}, {s for _, s in present}
        companions = set(absent_companions(scene))
        for kind in KINDS:
            score = float(row[index[kind]])
            if kind in present:
                groups["positive"].append(score)
                continue
            groups["overall"].append(score)
            if kind in companions:
                groups["companion"].append(score)
            if kind[0] in colours:  # absent, so another shape than every object of that colour
                groups["same_colour"].append(score)
            if kind[1] in shapes:
                groups["same_shape"].append(score)
    result = {name: auc(groups["positive"], scores) for name, scores in groups.items() if name != "positive"}
    return {"scenes": len(scenes), **result}


def _ratio(a: float, b: float) -> float:
    return float(a) / b if b else 0.0
