"""The round gate's signals: how far a round's model has drifted from its base, read on unlabelled images alone.

A self-rewarding loop that games its reward drifts in ways a user with no labels can still see (docs/loops.md):
CSR's descriptions turn into "a a a a" and repeated sentences, or shrink to "There."; every loop's text becomes one
its base would not have written. After each round, on held-out images of a plain folder (no ground truth read):

- ``repeated_words``: the share of descriptions repeating one word back to back more than ``MAX_WORD_RUN`` times;
- ``repeated_sentences``: the share with a sentence said twice;
- ``words``: mean words per description, and ``length_drift``: that over the base model's, minus 1;
- ``base_logprob``: the base model's mean log-prob per token of the round's descriptions (round 0: the base's own),
  and ``base_logprob_drop``: how far it fell from the base's own descriptions (0 at round 0).

``verdict`` (only with thresholds given): 1 when every signal given a limit is within it, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prefgen.stages import pair_text

MAX_WORD_RUN = 2  # "a a" can be English ("a a-frame"); three of one word back to back is not
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
GATE_LIMITS = ("repeated_words", "repeated_sentences", "length_drift", "base_logprob_drop")


@dataclass(frozen=True)
class TextSignals:
    repeated_words: float
    repeated_sentences: float
    words: float


def text_signals(texts: Sequence[str]) -> TextSignals:
    """The degeneration signals of a round's descriptions (``texts`` not empty)."""
    n = len(texts)
    return TextSignals(
        repeated_words=sum(pair_text.longest_word_run(t)[1] > MAX_WORD_RUN for t in texts) / n,
        repeated_sentences=sum(pair_text.has_duplicate_sentence(t) for t in texts) / n,
        words=sum(len(pair_text.words(t)) for t in texts) / n,
    )


def gate_signals(
    texts: Sequence[str], base_texts: Sequence[str], base_logprob: Callable[[Sequence[str]], float]
) -> dict[str, float]:
    """Every signal of one round from its descriptions, the base model's of the same images, and the base model's
    mean log-prob per token of a list of descriptions (one per image, in order)."""
    found, base = text_signals(texts), text_signals(base_texts)
    own, new = base_logprob(base_texts), base_logprob(texts)
    return {
        "repeated_words": found.repeated_words,
        "repeated_sentences": found.repeated_sentences,
        "words": found.words,
        "length_drift": found.words / base.words - 1 if base.words else math.nan,
        "base_logprob": new,
        "base_logprob_drop": own - new,
    }


def verdict(signals: dict[str, float], limits: dict[str, float]) -> int:
    """1 (keep the round) when every signal with a limit is at most it, else 0 (stop: keep the previous model).
    ``length_drift`` is judged on its size, so a model that shrinks its text fails as one that pads it."""
    for name, limit in limits.items():
        value = abs(signals[name]) if name == "length_drift" else signals[name]
        if not value <= limit:  # nan fails
            return 0
    return 1


def folder_images(folder: str | Path, limit: int | None) -> list[Path]:
    """The image files of ``folder`` (not recursive), sorted by name; the first ``limit``."""
    root = Path(folder)
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return files[:limit] if limit else files


def mean_token_logprob(vlm, prompt: str, images: list, texts: Sequence[str]) -> float:
    """The mean over descriptions of ``vlm``'s mean log-prob per token of each (with its end of turn, so an answer
    cut short is scored as stopping there) after ``prompt`` and its image."""
    from prefgen.models.prompts import Prompt

    scored = vlm.logprobs([Prompt(prompt, image) for image in images], list(texts), append_eos=True)
    return math.fsum(s.logprob_mean for s in scored) / len(scored)
