"""The shapes world's language, generated from ground truth: object phrases, captions and question/answer pairs.

Two forms of text describe a scene, both listing objects in random order except that a prior companion always comes
right after its trigger (the training prior lives in the text as well as in the pixels):

- a caption, one short sentence: "a red square, a blue cross and two green circles."
- a description, one sentence per group of same-kind objects, so that sentence-level methods (CSR) have sentences to
  search: "There is a red square. There is a blue cross next to it. There are two green circles."

Questions are of four kinds, each with an exact answer (``judge.py`` reads answers the same way): presence ("is there
a red circle in the image?"), the colour of a shape that appears in one colour only ("what color is the square?"),
the shape of a colour that appears on one shape only ("what shape is the red object?") and counts ("how many
objects are there?", "how many circles are there?", "how many red objects are there?").
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from prefgen.shapes.world import COMPANION, KINDS, TRIGGER, Scene

NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def plural(shape: str) -> str:
    return shape + ("es" if shape.endswith(("s", "x", "ch", "sh")) else "s")


def phrase(kind: tuple[str, str], count: int = 1) -> str:
    """ "a red circle", or "two red circles" for a count above one."""
    colour, shape = kind
    if count == 1:
        return f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}"
    return f"{NUMBERS[count] if count < len(NUMBERS) else count} {colour} {plural(shape)}"


def join(items: list[str]) -> str:
    """ "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption(scene: Scene, rng: np.random.Generator | None = None) -> str:
    """All objects, grouped by kind with counts; companions right after their triggers. Random order with ``rng``,
    else ground-truth order."""
    counts = Counter(obj.kind for obj in scene.objects)
    return join([phrase(kind, counts[kind]) for kind in ordered_kinds(scene, rng)]) + "."


def describe(scene: Scene, rng: np.random.Generator | None = None) -> str:
    """One sentence per group of same-kind objects, in caption order; a companion's sentence says it is next to its
    trigger."""
    counts = Counter(obj.kind for obj in scene.objects)
    sentences, previous = [], None
    for kind in ordered_kinds(scene, rng):
        many = counts[kind] > 1
        where = ""
        if previous is not None and COMPANION.get(previous) == kind:
            where = " next to them" if counts[previous] > 1 else " next to it"
        sentences.append(f"There {'are' if many else 'is'} {phrase(kind, counts[kind])}{where}.")
        previous = kind
    return " ".join(sentences)


def ordered_kinds(scene: Scene, rng: np.random.Generator | None = None) -> list[tuple[str, str]]:
    """The scene's kinds in text order: random with ``rng`` (else ground-truth order), companions after triggers."""
    counts = Counter(obj.kind for obj in scene.objects)
    kinds = list(counts)
    if rng is not None:
        kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    ordered: list[tuple[str, str]] = []
    for kind in kinds:
        if kind in TRIGGER and TRIGGER[kind] in counts:
            continue  # written after its trigger
        ordered.append(kind)
        if kind in COMPANION and COMPANION[kind] in counts:
            ordered.append(COMPANION[kind])
    return ordered


def presence_question(kind: tuple[str, str]) -> str:
    return f"is there {phrase(kind)} in the image?"


def absent_kinds(scene: Scene) -> list[tuple[str, str]]:
    present = scene.kinds
    return [k for k in KINDS if k not in present]


def absent_companions(scene: Scene) -> list[tuple[str, str]]:
    """Companions of triggers in the scene that are not in it: the prior's favourite hallucinations."""
    present = scene.kinds
    return [COMPANION[k] for k in sorted(present) if k in COMPANION and COMPANION[k] not in present]


def confusable_kinds(scene: Scene) -> list[tuple[str, str]]:
    """Absent kinds sharing a colour or a shape with a present object (what a colour-only model confuses)."""
    present = scene.kinds
    colours = {c for c, _ in present}
    shapes = {s for _, s in present}
    return [k for k in KINDS if k not in present and (k[0] in colours or k[1] in shapes)]


def colour_questions(scene: Scene) -> list[tuple[str, str]]:
    """("what color is the square?", "red.") for each shape present in exactly one colour."""
    return [(f"what color is the {shape}?", f"{colour}.") for shape, colour in _settled(scene, "shape", "colour")]


def shape_questions(scene: Scene) -> list[tuple[str, str]]:
    """("what shape is the red object?", "circle.") for each colour present on exactly one shape."""
    return [
        (f"what shape is the {colour} object?", f"{shape}.") for colour, shape in _settled(scene, "colour", "shape")
    ]


def _settled(scene: Scene, key: str, value: str) -> list[tuple[str, str]]:
    """(k, v) for each ``key`` attribute present in the scene with a single ``value`` attribute, in scene order."""
    found: dict[str, set[str]] = {}
    for obj in scene.objects:
        found.setdefault(getattr(obj, key), set()).add(getattr(obj, value))
    return [(k, next(iter(vs))) for k, vs in found.items() if len(vs) == 1]


def count_question(scene: Scene) -> tuple[str, str]:
    return "how many objects are there?", f"{NUMBERS[len(scene.objects)]}."


def count_questions(scene: Scene) -> list[tuple[str, str]]:
    """Every object, each shape present and each colour present, counted."""
    found = [count_question(scene)]
    for shape in sorted({o.shape for o in scene.objects}):
        n = sum(o.shape == shape for o in scene.objects)
        found.append((f"how many {plural(shape)} are there?", f"{NUMBERS[n]}."))
    for colour in sorted({o.colour for o in scene.objects}):
        n = sum(o.colour == colour for o in scene.objects)
        found.append((f"how many {colour} objects are there?", f"{NUMBERS[n]}."))
    return found


#: Share of each kind of question in training (presence, colour, shape, count).
QA_MIX = {"presence": 0.35, "colour": 0.2, "shape": 0.15, "count": 0.3}


def sample_qa(scene: Scene, rng: np.random.Generator, kinds: tuple[str, ...] = tuple(QA_MIX)) -> tuple[str, str]:
    """One question with its answer, of a kind drawn from ``QA_MIX`` (among ``kinds``). Half of the presence
    questions ask about an absent object, and those prefer the absent companion (when there is one) so that a model
    learns to say no to the prior. A kind the scene cannot ask (no shape in one colour) falls back to a count."""
    weights = np.array([QA_MIX[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    if kind == "presence":
        if rng.random() < 0.5:
            present = sorted(scene.kinds)
            return presence_question(present[int(rng.integers(len(present)))]), "yes."
        pool = absent_companions(scene) if rng.random() < 0.5 else []
        pool = pool or (confusable_kinds(scene) if rng.random() < 0.5 else []) or absent_kinds(scene)
        return presence_question(pool[int(rng.integers(len(pool)))]), "no."
    if kind == "count" and rng.random() < 0.5:
        return count_question(scene)  # the whole count is the hardest question: half of the count questions ask it
    found = {"colour": colour_questions, "shape": shape_questions, "count": count_questions}[kind](scene)
    found = found or count_questions(scene)
    return found[int(rng.integers(len(found)))]


def answerable(scene: Scene, question: str) -> bool:
    """Whether a generated question can be answered from the scene (a colour question needs its shape present in
    one colour, a shape question its colour on one shape)."""
    if question.startswith("what color is the"):
        return any(q == question for q, _ in colour_questions(scene))
    if question.startswith("what shape is the"):
        return any(q == question for q, _ in shape_questions(scene))
    return True
