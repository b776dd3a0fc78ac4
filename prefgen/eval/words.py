"""How the reference CHAIR finds COCO objects in a caption (LisaAnne/Hallucination ``utils/chair.py``,
``caption_to_words``), step by step:

1. lower-case, then split into tokens as ``nltk.word_tokenize`` does (``tokenize`` below);
2. singularise every token with pattern's rules (``singular.py``);
3. one greedy left-to-right pass joins two-word names (``DOUBLE_WORDS``): "hot dog" stays a hot dog, "baby bird"
   becomes "bird" (so "baby" does not count as a person), "passenger train" becomes "train", "bow tie" becomes
   "tie", "toilet seat" becomes "toilet"; a few joins ("home plate", "train track") only keep their words from
   matching;
4. if both "toilet" and "seat" are left, every "seat" is dropped (a toilet's seat is not a chair);
5. every remaining token in the synonym table is a mention of its category: each mention counts, repeats too.

``tokenize`` re-implements the Penn Treebank rules nltk applies (sentences split after ". ", "!" or "?"; the
sentence's final period, commas, brackets, quotes and clitics such as "'s" and "n't" split off; hyphens and other
inner punctuation kept, so "hot-dog" is one token that matches nothing, as in the reference). Where it can differ
from nltk: punkt leaves some periods on their word (known abbreviations such as "dr.", a number, a word followed
by a quotation mark: 'a dog. "hi"' keeps "dog." there, which then matches nothing). Checked against nltk 3.2.5's
Treebank tokenizer behind an untrained punkt on 3,000 random texts: 47 differ, every one only in where a period
sits. The singulariser: see ``singular.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from prefgen.core.errors import PrefgenError
from prefgen.eval.singular import singularize
from prefgen.eval.synonyms import COCO_SYNONYMS

_COCO_DOUBLE = (
    "motor bike, motor cycle, air plane, traffic light, street light, traffic signal, stop light, fire hydrant, "
    "stop sign, parking meter, suit case, sports ball, baseball bat, baseball glove, tennis racket, wine glass, "
    "hot dog, cell phone, mobile phone, teddy bear, hair drier, potted plant, bow tie, laptop computer, "
    "stove top oven, home plate, train track"
).split(", ")
_ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "animal", "cub")
DOUBLE_WORDS: dict[str, str] = {
    **{name: name for name in _COCO_DOUBLE},
    **{f"{age} {animal}": animal for animal in _ANIMALS for age in ("baby", "adult")},
    "passenger jet": "jet",
    "passenger train": "train",
    "bow tie": "tie",
    "toilet seat": "toilet",
    "wine glas": "wine glass",  # what the singulariser makes of "wine glass"
}

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPLITS = [
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r'^"', " `` "),
        (r'([ (\[{<])"', r"\1 `` "),
        (r"([:,])([^\d])", r" \1 \2"),
        (r"([:,])$", r" \1 "),
        (r"\.\.\.", " ... "),
        (r"[;@#$%&?!]", r" \g<0> "),
        (r"([^.])(\.)([\])}>\"']*)\s*$", r"\1 \2\3 "),  # the sentence's last period only
        (r"([^'])' ", r"\1 ' "),
        (r"[\]\[(){}<>]", r" \g<0> "),
        (r"--", " -- "),
        (r'"', " '' "),
        (r"([^' ])('s|'m|'d|') ", r"\1 \2 "),
        (r"([^' ])('ll|'re|'ve|n't) ", r"\1 \2 "),
        (r"\b(can)(not)\b", r" \1 \2 "),
        (r"\b(gon)(na)\b", r" \1 \2 "),
        (r"\b(got)(ta)\b", r" \1 \2 "),
        (r"\b(wan)(na) ", r" \1 \2 "),
    )
]


def tokenize(text: str) -> list[str]:
    """Tokens of a lower-cased caption, as ``nltk.word_tokenize`` splits them (see the module docstring)."""
    tokens: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        sentence = f" {sentence} "
        for pattern, replacement in _SPLITS:
            sentence = pattern.sub(replacement, sentence)
        tokens += sentence.split()
    return tokens


@dataclass(frozen=True)
class ObjectWords:
    """A synonym table as the reference uses it: every entry -> its line's first entry (the category), and where
    it came from (``"prefgen"`` or the file's path), which results carry."""

    to_object: dict[str, str]
    source: str

    @classmethod
    def prefgen(cls) -> ObjectWords:
        """prefgen's own table; each entry also under its singular, since captions are singularised first."""
        found = {}
        for category, entries in COCO_SYNONYMS.items():
            for entry in entries:
                found[entry] = category
                found[" ".join(singularize(w) for w in entry.split())] = category
        return cls(found, "prefgen")

    @classmethod
    def read(cls, path: str | Path) -> ObjectWords:
        """A reference-format ``synonyms.txt``: one category a line, entries split on ", " exactly as the reference
        splits them (so "scooter,  motor bike" yields the never-matching entry " motor bike"), a later line winning
        a word two lines share. Blank lines are skipped; a line with an empty entry is an error."""
        found: dict[str, str] = {}
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise PrefgenError(f"cannot read synonyms {path}: {exc}") from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            entries = line.strip().split(", ")
            if "" in entries:
                raise PrefgenError(f"{path}:{number}: empty entry in {line.strip()!r} (entries are separated by ', ')")
            found.update((entry, entries[0]) for entry in entries)
        if not found:
            raise PrefgenError(f"synonyms {path} holds no category")
        return cls(found, str(path))

    def category(self, name: str) -> str:
        """The object an instance annotation's category name stands for."""
        try:
            return self.to_object[name]
        except KeyError:
            raise PrefgenError(f"the synonyms ({self.source}) have no entry for the COCO category {name!r}") from None

    def mentions(self, caption: str) -> list[tuple[str, str]]:
        """(word, object) for every object mention in ``caption``, in order, repeats included."""
        words = [singularize(token) for token in tokenize(caption.lower())]
        joined, i = [], 0
        while i < len(words):
            pair = " ".join(words[i : i + 2])
            if pair in DOUBLE_WORDS:
                joined.append(DOUBLE_WORDS[pair])
                i += 2
            else:
                joined.append(words[i])
                i += 1
        if "toilet" in joined and "seat" in joined:
            joined = [word for word in joined if word != "seat"]
        return [(word, self.to_object[word]) for word in joined if word in self.to_object]
