"""The shapes world's language, generated from ground truth: object phrases, captions and question/answer pairs.

Captions list the objects in random order, except that a prior companion is always written right after its trigger
(the training prior lives in the text as well as in the pixels): "a red square, a blue cross and two green circles."
Questions are of three kinds, each with an exact answer: presence ("is there a red circle in the image?"), the
colour of a shape that appears in one colour only, and the number of objects.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from prefgen.shapes.world import COMPANION, KINDS, SHAPES, TRIGGER, Scene

NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def plural(shape: str) -> str:
    return shape + ("es" if shape.endswith(("s", "x", "ch", "sh")) else "s")


def phrase(kind: tuple[str, str], count: int = 1) -> str:
    """"a red circle", or "two red circles" for a count above one."""
    colour, shape = kind
    if count == 1:
        return f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}"
    return f"{NUMBERS[count] if count < len(NUMBERS) else count} {colour} {plural(shape)}"


def join(items: list[str]) -> str:
    """"a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption(scene: Scene, rng: np.random.Generator | None = None) -> str:
    """All objects, grouped by kind with counts; companions right after their triggers. Random order with ``rng``,
    else ground-truth order."""
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
    return join([phrase(kind, counts[kind]) for kind in ordered]) + "."


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
    colours: dict[str, set[str]] = {}
    for obj in scene.objects:
        colours.setdefault(obj.shape, set()).add(obj.colour)
    return [(f"what color is the {shape}?", f"{next(iter(found))}.") for shape, found in colours.items()
            if len(found) == 1]


def count_question(scene: Scene) -> tuple[str, str]:
    return "how many objects are there?", f"{NUMBERS[len(scene.objects)]}."


def sample_qa(scene: Scene, rng: np.random.Generator) -> tuple[str, str]:
    """One question with its answer. Half of the presence questions ask about an absent object, and those prefer
    the absent companion (when there is one) so that a model learns to say no to the prior."""
    roll = rng.random()
    if roll < 0.6:
        if rng.random() < 0.5:
            kinds = sorted(scene.kinds)
            return presence_question(kinds[int(rng.integers(len(kinds)))]), "yes."
        pool = absent_companions(scene) if rng.random() < 0.5 else []
        pool = pool or (confusable_kinds(scene) if rng.random() < 0.5 else []) or absent_kinds(scene)
        return presence_question(pool[int(rng.integers(len(pool)))]), "no."
    if roll < 0.85:
        found = colour_questions(scene)
        if found:
            return found[int(rng.integers(len(found)))]
    return count_question(scene)


def answerable(scene: Scene, question: str) -> bool:
    """Whether a generated question can be answered from the scene (colour questions need their shape present)."""
    for shape in SHAPES:
        if question == f"what color is the {shape}?":
            return any(q == question for q, _ in colour_questions(scene))
    return True
