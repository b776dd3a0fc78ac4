"""Where a sentence ends, decided on decoded text so that no tokenizer's ids are hard-coded.

CSR's released code stops beam search at LLaMA token 29889 ("."), which breaks on any other tokenizer, on decimals
("3.5") and on abbreviations ("Dr. Smith"). Here a sentence ends at ``.``, ``!``, ``?`` or ``…`` (optionally followed
by closing quotes or brackets) *followed by whitespace*, at a CJK full stop, or at a line break after some text.

A terminator at the very end of the text is only *pending*: whether "3." becomes "3.5" or a sentence end depends on
the next token. The generation loop therefore decodes one token more and keeps the sentence only if that token
starts with whitespace (or ends the answer); the look-ahead token itself is never part of the candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A "." after these is no sentence end. "No." and "etc." are left out on purpose: in image descriptions they end
# sentences more often than not, and a false end only splits a sentence where a missed one merges two.
ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "vs",
        "e.g",
        "i.e",
        "approx",
        "fig",
        "inc",
        "ltd",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    }
)
_TERMINATOR = re.compile(r"(?:[.!?…]+)[\"'”’)\]}»]*")
_CJK_TERMINATOR = re.compile(r"[。！？]")
_CLOSERS = "\"'”’)]}»"


@dataclass(frozen=True)
class SentenceEnd:
    """``end``: index just past the sentence in the text; ``confirmed``: False while the next character is unknown."""

    end: int
    confirmed: bool


def find_sentence_end(text: str, newline_ends: bool = True) -> SentenceEnd | None:
    """The first sentence end in ``text`` (the text generated after the answer so far), or None."""
    candidates = []
    for match in _TERMINATOR.finditer(text):
        if _is_abbreviation_or_number(text, match.start(), match.group()):
            continue
        end = match.end()
        if end == len(text):
            candidates.append(SentenceEnd(end, confirmed=False))
        elif text[end].isspace():
            candidates.append(SentenceEnd(end, confirmed=True))
        if candidates:
            break
    cjk = _CJK_TERMINATOR.search(text)
    if cjk:
        end = cjk.end()
        while end < len(text) and text[end] in _CLOSERS:
            end += 1
        candidates.append(SentenceEnd(end, confirmed=True))
    if newline_ends:
        line_break = _first_line_break_after_text(text)
        if line_break is not None:
            candidates.append(SentenceEnd(line_break, confirmed=True))
    return min(candidates, key=lambda c: c.end) if candidates else None


def split_sentences(text: str, newline_ends: bool = True) -> list[str]:
    """``text`` cut at every sentence end ``find_sentence_end`` sees, each sentence stripped, empty ones left out.
    The one splitter of the project: scoring sentence by sentence, pair filters and question parsing all use it."""
    found: list[str] = []
    rest = text
    while rest.strip():
        end = find_sentence_end(rest, newline_ends)
        cut = len(rest) if end is None else end.end
        if rest[:cut].strip():
            found.append(rest[:cut].strip())
        rest = rest[cut:]
    return found


def _first_line_break_after_text(text: str) -> int | None:
    """Index just past the first newline that follows some non-space text (a list item, a heading)."""
    seen_text = False
    for index, char in enumerate(text):
        if char == "\n" and seen_text:
            return index + 1
        seen_text = seen_text or not char.isspace()
    return None


def _is_abbreviation_or_number(text: str, start: int, terminator: str) -> bool:
    """A lone "." after an abbreviation, an initial ("J. Smith") or a list number at a line start is no end."""
    if not terminator.startswith(".") or terminator.startswith(".."):
        return False
    word_start = start
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:start]
    if not word:
        return False
    bare = word.lstrip("(\"'“‘[").lower()
    if bare in ABBREVIATIONS:
        return True
    if len(bare) == 1 and bare.isalpha() and word[-1].isupper():
        return True  # an initial, "J. Smith"
    if "." in bare and all(len(part) <= 2 for part in bare.split(".")):
        return True  # "U.S", "e.g" before their final period
    before = text[:word_start].rstrip(" \t")
    return bare.isdigit() and len(bare) <= 3 and (before == "" or before.endswith("\n"))  # "1." opening a list item
