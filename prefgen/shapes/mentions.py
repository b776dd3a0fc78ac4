"""Object mentions in free text, for CHAIR and reward accuracy on shapes scenes.

A mention is a noun phrase ending in a shape word, with the colour words and the count that precede it:
"two red circles" -> (red, circle, 2); "a red and a blue box" -> (red, square), (blue, square); "a circle" ->
(None, circle). Synonyms come from a small explicit table (a model may say "box" or "plus"); anything outside it
is not an object. Negated phrases ("there is no red circle") are kept but flagged, and callers skip them.
Colours written after the noun ("the square is red") are not read: captions name objects as colour + shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prefgen.shapes.language import plural
from prefgen.shapes.world import COLOURS

SHAPE_SYNONYMS = {
    "circle": ("circle", "disc", "disk", "dot", "ring"),
    "square": ("square", "box", "rectangle", "block"),
    "triangle": ("triangle",),
    "cross": ("cross", "plus", "x"),
}
COLOUR_SYNONYMS = {
    "purple": ("purple", "violet"),
    "orange": ("orange",),
    "red": ("red",),
    "yellow": ("yellow",),
    "green": ("green",),
    "blue": ("blue",),
}
assert set(COLOUR_SYNONYMS) == set(COLOURS)

SHAPE_WORDS = {
    word: shape for shape, words in SHAPE_SYNONYMS.items() for base in words for word in (base, plural(base))
}
SHAPE_WORDS.update({"pluses": "cross", "plusses": "cross", "xs": "cross", "boxes": "square"})
COLOUR_WORDS = {word: colour for colour, words in COLOUR_SYNONYMS.items() for word in words}
COUNT_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "several": None,
    "some": None,
    "many": None,
}
NEGATIONS = {"no", "not", "without", "zero", "nor", "neither"}
# words that may sit inside a noun phrase without ending it
FILLERS = {
    "and",
    "or",
    "the",
    "another",
    "other",
    "small",
    "large",
    "big",
    "little",
    "tiny",
    "bright",
    "dark",
    "light",
    "pale",
    "shaped",
    "colored",
    "coloured",
    "of",
    "more",
    "also",
}
_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")


@dataclass(frozen=True)
class Mention:
    colour: str | None  # None: "a circle", with no colour said
    shape: str
    count: int | None  # None: no count said ("the circle", "several circles"); plural without number -> None
    negated: bool = False

    @property
    def kind(self) -> tuple[str | None, str]:
        return (self.colour, self.shape)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def parse_mentions(text: str) -> list[Mention]:
    """Every object mention in ``text``, in order, negated ones included (flagged)."""
    found: list[Mention] = []
    colours: list[str] = []
    count: int | None = None
    negated = False
    for word in tokens(text):
        if word in SHAPE_WORDS:
            shape = SHAPE_WORDS[word]
            for colour in colours or [None]:
                found.append(Mention(colour, shape, count if len(colours) <= 1 else None, negated))
            colours, count, negated = [], None, False
        elif word in COLOUR_WORDS:
            colours.append(COLOUR_WORDS[word])
        elif word in COUNT_WORDS or word.isdigit():
            count = int(word) if word.isdigit() else COUNT_WORDS[word]
        elif word in NEGATIONS:
            negated = True
        elif word not in FILLERS:  # any other word or punctuation ends the phrase
            colours, count, negated = [], None, False
    return found


def mentioned_kinds(text: str) -> set[tuple[str | None, str]]:
    """The distinct (colour or None, shape) the text says are there (negated mentions left out)."""
    return {m.kind for m in parse_mentions(text) if not m.negated}


@dataclass(frozen=True)
class Judged:
    """One text judged against a scene's kinds: unique mentioned kinds that are there (hits) or not."""

    hits: frozenset
    hallucinated: frozenset
    mentioned: frozenset  # every distinct kind mentioned, coloured or not

    @property
    def n_mentions(self) -> int:
        return len(self.mentioned)


def judge(text: str, present: set[tuple[str, str]]) -> Judged:
    """A coloured mention is a hit when that exact kind is present. A colourless one ("a circle") is hallucinated
    only when no object has that shape, and is never a hit: it names no object precisely enough for recall."""
    shapes = {shape for _, shape in present}
    hits, wrong = set(), set()
    mentioned = mentioned_kinds(text)
    for colour, shape in mentioned:
        if colour is None:
            if shape not in shapes:
                wrong.add((colour, shape))
        elif (colour, shape) in present:
            hits.add((colour, shape))
        else:
            wrong.add((colour, shape))
    return Judged(frozenset(hits), frozenset(wrong), frozenset(mentioned))
