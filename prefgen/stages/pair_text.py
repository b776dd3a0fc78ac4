"""How ``select_pairs`` reads an answer's text: the tests behind its filters, each a pure function of the text.

The label-free guards against reward gaming (issue 33) are here too: each reads only the two answers, never the
image's ground truth, so they run on a plain image folder as they do on the shapes world.

- ``longest_word_run``: a degenerate answer repeats one word ("a a a a", what CSR's best of eight ends in).
- ``differ_only_in_numbers``: "two." against "three.", or "There is a red circle." against "There are two red
  circles.": a self-reward that cannot count cannot judge such a pair (SENA's noised-image rejections).
- ``count_direction``: whether a pair's rejected answer says a higher or a lower number than its chosen one; over
  a round's pairs, a bias one way means the rejections err in a fixed direction, and turn right once the model
  moves that way (SENA's noised images make the model see more objects).
- ``length_share``: how much of what two answers do not share is the longer one's surplus; near 1 the pair teaches
  "say more" or "say less" (CSR's summed path reward prefers the longer description) rather than what to say.
"""

from __future__ import annotations

import difflib
import re

from prefgen.models.sentences import split_sentences

_YES_NO = {"yes", "no"}
_WORD = re.compile(r"[^\W_]+")  # letters and digits; punctuation and spaces between
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")  # words and single punctuation marks
_COUNTS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty"
)
_NUMBER_WORDS = {"a": 1, "an": 1, **{word: value for value, word in enumerate(_COUNTS.split())}}
# the verbs whose form follows the number ("there is a circle" / "there are two circles")
_AGREEING = {"is": "be", "are": "be", "was": "be-past", "were": "be-past", "has": "have", "have": "have"}


def normalise(text: str) -> str:
    """The text with every run of whitespace one space."""
    return " ".join(text.split())


def is_yes_no(text: str) -> bool:
    return text.strip().removesuffix(".").strip().lower() in _YES_NO


def has_duplicate_sentence(text: str) -> bool:
    """No tokenizer (nltk's sent_tokenize in SENA's make_pair.py): a sentence ends at . ! or ? then whitespace."""
    sentences = [normalise(s) for s in split_sentences(text)]
    return len(set(sentences)) < len(sentences)


def symbol_fraction(text: str) -> float:
    return sum(not (c.isalnum() or c.isspace()) for c in text) / len(text)


def words(text: str) -> list[str]:
    """Lower-case words (letters and digits), punctuation left out."""
    return _WORD.findall(text.lower())


def longest_word_run(text: str) -> tuple[str, int]:
    """(word, times) of the longest run of one word repeated back to back, case and punctuation ignored
    ("a purple circle. a a a a" gives ("a", 4)); ("", 0) for a text without words."""
    best, length, previous, run = "", 0, None, 0
    for word in words(text):
        run = run + 1 if word == previous else 1
        previous = word
        if run > length:
            best, length = word, run
    return best, length


def _singular(word: str) -> str:
    if word.endswith("es") and word[:-2].endswith(("s", "x", "ch", "sh")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


def _numbers_and_rest(text: str) -> tuple[list[int], list[str]]:
    """The text's numbers (digits, number words, "a"/"an" as one) in order, and its tokens with every number one
    mark and the words whose form follows a number (plural nouns, is/are) in one form."""
    numbers, rest = [], []
    for token in _TOKEN.findall(text.lower()):
        if token.isdigit() or token in _NUMBER_WORDS:
            numbers.append(int(token) if token.isdigit() else _NUMBER_WORDS[token])
            rest.append("#")
        else:
            rest.append(_AGREEING.get(token) or _singular(token))
    return numbers, rest


def differ_only_in_numbers(first: str, second: str) -> bool:
    """Whether the two texts say different numbers and are otherwise the same (but for the agreement that follows a
    number): "two." and "three.", "There is a red circle." and "There are 2 red circles.". Texts whose numbers are
    the same ("There are a blue cross." / "There is a blue cross.": grammar only) are not."""
    (numbers_a, rest_a), (numbers_b, rest_b) = _numbers_and_rest(first), _numbers_and_rest(second)
    return rest_a == rest_b and numbers_a != numbers_b


def count_disagreement(first: str, second: str) -> bool:
    """Whether a sentence of one text and a sentence of the other say different numbers and are otherwise the same
    ("There are two green crosses." in one, "There is a green cross." in the other): the texts disagree on how many
    of a thing there are, whatever else they say."""

    def counted(text: str) -> dict[tuple[str, ...], set[tuple[int, ...]]]:
        found: dict[tuple[str, ...], set[tuple[int, ...]]] = {}
        for sentence in split_sentences(text):
            numbers, rest = _numbers_and_rest(sentence)
            if numbers:
                found.setdefault(tuple(rest), set()).add(tuple(numbers))
        return found

    a, b = counted(first), counted(second)
    return any(a[rest] != b[rest] for rest in a.keys() & b.keys())


def length_share(first: str, second: str) -> float:
    """The share of the tokens the two texts do not have in common that is the longer text's surplus: 1.0 when the
    shorter is the longer with tokens left out (it differs only in length), 0.0 when as many tokens were replaced as
    there are on each side (it differs only in content); 0.0 for texts with the same tokens."""
    a, b = _TOKEN.findall(first.lower()), _TOKEN.findall(second.lower())
    matched = sum(block.size for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())
    unshared = len(a) + len(b) - 2 * matched
    return abs(len(a) - len(b)) / unshared if unshared else 0.0


def count_direction(chosen: str, rejected: str) -> int | None:
    """+1 when the rejected answer says a higher number than the chosen one, -1 a lower, 0 the same; None unless
    each says exactly one number ("two." / "There are 3 circles."; "a" and "an" count as one)."""
    (chosen_numbers, _), (rejected_numbers, _) = _numbers_and_rest(chosen), _numbers_and_rest(rejected)
    if len(chosen_numbers) != 1 or len(rejected_numbers) != 1:
        return None
    return (rejected_numbers[0] > chosen_numbers[0]) - (rejected_numbers[0] < chosen_numbers[0])


def direction_bias(pairs) -> dict[str, float | int]:
    """Over (chosen, rejected) pairs: how many say one number each (``count_pairs``), the shares whose rejected
    number is higher and lower, and ``bias`` = higher - lower (0 with no such pair): label-free."""
    found = [d for d in (count_direction(c, r) for c, r in pairs) if d is not None]
    n = len(found)
    higher, lower = (found.count(1) / n, found.count(-1) / n) if n else (0.0, 0.0)
    return {"count_pairs": n, "rejected_higher": higher, "rejected_lower": lower, "bias": higher - lower}
