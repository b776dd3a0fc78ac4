"""Choose chosen/rejected per prompt from candidate columns and scores, apply SENA's filters, a margin threshold
and a length-ratio guard, and write rows in the output contract (trl's VLM preference format plus provenance).

Reads ``image``, ``image_id``, ``question`` and the candidate (and score) columns; writes ``id`` and the contract
columns; every input column stays in the row (``question`` included). The pair's prompt is the question, or the
``prompt`` column (the question as the answers were asked, suffix included). Pure Python, no model.

A candidate column holds one answer, or a list of sampled answers: with a list, a score column holding a list of
the same length picks the best (chosen) or worst (rejected) answer, ties to the first; without one the first answer
is taken. Pointing ``chosen`` and ``rejected`` at the same list column gives best-vs-worst pairs.

Filters run in this order and the first that fails names the row's Drop reason: ``missing_question``,
``missing_candidate``, ``missing_prompt``, ``equal_answers``, ``yes_no``, ``rejected_in_chosen``,
``duplicate_sentence``, ``degenerate_chosen``, ``too_long``, ``mostly_symbols``, ``length_ratio``,
``numbers_only``, ``mostly_length``, ``low_margin``.

``degenerate_chosen``, ``numbers_only`` and ``mostly_length`` are the label-free guards against reward gaming
(issue 33; the text tests are in ``pair_text``), off unless set: a self-reward that prefers degenerate text, cannot
count, or prefers longer (or shorter) answers writes pairs of those kinds, and training on them is how the loops in
docs/loops.md lose their round-1 gain.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from typing import ClassVar, Literal

from pydantic import Field

from prefgen.core.contract import CONTRACT_COLUMNS
from prefgen.stages import pair_text
from prefgen.stages.base import Drop, Row, RowStage, StageParams


class SelectPairsParams(StageParams):
    """Turn candidates into filtered preference pairs."""

    type: Literal["select_pairs"] = "select_pairs"
    chosen: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Column with the chosen candidate(s).")
    rejected: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Column with the rejected candidate(s).")
    chosen_score: str | None = Field(None, description="Column with the chosen candidate's score(s), if any.")
    rejected_score: str | None = Field(None, description="Column with the rejected candidate's score(s), if any.")
    method: str = Field(..., description="Provenance label written to the `method` column (e.g. csr, sena).")
    prompt: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Column whose text is the pair's prompt, e.g. the `answer` "
        "stage's `prompt_output` (the question with the suffix it was asked with); None: the question.",
    )
    min_margin: float | None = Field(None, description="Drop pairs whose score margin is below this (when known).")
    max_length_ratio: float | None = Field(
        None, gt=1.0, description="Drop pairs whose longer answer has more than this many times the characters."
    )
    drop_duplicate_sentences: bool = Field(True, description="Drop answers that repeat a sentence.")
    drop_yes_no: bool = Field(True, description="Drop bare 'Yes' / 'No' answers.")
    drop_rejected_in_chosen: bool = Field(True, description="Drop pairs whose rejected text is inside the chosen.")
    max_non_alnum_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Drop answers whose share of symbols (not letters, digits, spaces) is above."
    )
    max_words: int | None = Field(None, ge=1, description="Drop answers with more (whitespace) words; SENA uses 30.")
    # Label-free guards against reward gaming (issue 33): each reads the two answers only; None / false: off.
    max_word_run: int | None = Field(
        None,
        ge=1,
        description="Drop pairs whose chosen answer repeats one word more than this many times back to back "
        "('a a a a' is a run of 4; case and punctuation ignored): reason degenerate_chosen.",
    )
    min_chosen_words: int | None = Field(
        None,
        ge=1,
        description="Drop pairs whose chosen answer has fewer words than this (a description cut to 'There.'): "
        "reason degenerate_chosen.",
    )
    drop_numbers_only: bool = Field(
        False,
        description="Drop pairs whose answers differ only in their numbers ('two.' / 'three.', 'There is a red "
        "circle.' / 'There are two red circles.'; number words, digits, a/an, and the plural and is/are that "
        "follow them): reason numbers_only.",
    )
    drop_count_disagreement: bool = Field(
        False,
        description="Drop pairs where a sentence of the chosen answer and one of the rejected differ only in their "
        "numbers ('There are two green crosses.' / 'There is a green cross.'), whatever else the answers say: a "
        "reward that cannot count (CLIP) cannot judge them: reason count_disagreement.",
    )
    max_length_share: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Drop pairs where more than this share of the tokens the answers do not have in common is "
        "the longer answer's surplus (1.0: one is the other with words left out; 0.0: as many words replaced on "
        "each side): reason mostly_length.",
    )

    later_keys: ClassVar = (
        "max_word_run",
        "min_chosen_words",
        "drop_numbers_only",
        "drop_count_disagreement",
        "max_length_share",
    )
    reads: ClassVar = ("image", "image_id", "question")
    # `question` is read and passes through unchanged, so it is not declared again (the validator would otherwise
    # offer this stage as a writer of `question` to stages that run before it).
    writes: ClassVar = ("id", *CONTRACT_COLUMNS)

    def input_columns(self) -> list[str]:
        extra = [c for c in (self.chosen_score, self.rejected_score) if c]
        return [*self.reads, self.chosen, self.rejected, *extra, *([self.prompt] if self.prompt else [])]


def pair_id(image_id: str, question: str, chosen: str, rejected: str) -> str:
    """Stable id of a pair: the same image, question and answers give the same id in every build."""
    return hashlib.sha256(json.dumps([image_id, question, chosen, rejected]).encode()).hexdigest()[:16]


def pick(candidates, scores, best: bool) -> tuple[str | None, float | None]:
    """(answer, score) from a candidate cell and its score cell (see the module docstring for lists)."""
    if isinstance(candidates, (list, tuple)):
        if not candidates:
            return None, None
        index = 0
        if isinstance(scores, (list, tuple)) and len(scores) == len(candidates):
            scored = [_score(s) for s in scores]
            known = [i for i, s in enumerate(scored) if s is not None]
            if known:  # max and min return the first of equals: ties go to the earlier candidate
                index = (max if best else min)(known, key=lambda i: scored[i])
            scores = scores[index]
        elif isinstance(scores, (list, tuple)):
            scores = None  # a list that does not line up with the candidates says nothing about the one taken
        candidates = candidates[index]
    text = candidates.strip() if isinstance(candidates, str) else None
    return text or None, _score(scores)


def _score(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        return None
    return float(value)


class SelectPairs(RowStage):
    params: SelectPairsParams

    def process_row(self, row: Row) -> Row | Drop:
        p = self.params
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            return Drop(row, "missing_question", f"question: {question!r}")
        chosen, chosen_score = pick(row.get(p.chosen), row.get(p.chosen_score) if p.chosen_score else None, best=True)
        rejected, rejected_score = pick(
            row.get(p.rejected), row.get(p.rejected_score) if p.rejected_score else None, best=False
        )
        if chosen is None or rejected is None:
            missing = p.chosen if chosen is None else p.rejected
            return Drop(row, "missing_candidate", f"{missing}: {row.get(missing)!r}")
        prompt = row.get(p.prompt) if p.prompt else question
        if not isinstance(prompt, str) or not prompt.strip():
            return Drop(row, "missing_prompt", f"{p.prompt}: {prompt!r}")
        margin = chosen_score - rejected_score if chosen_score is not None and rejected_score is not None else None
        failed = self._failed_filter(chosen, rejected, margin)
        if failed:
            return Drop(row, *failed)
        return {
            **row,
            "id": pair_id(str(row.get("image_id")), prompt, chosen, rejected),
            "images": [row["image"]],
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "chosen_score": chosen_score,
            "rejected_score": rejected_score,
            "margin": margin,
            "method": p.method,
        }

    def _failed_filter(self, chosen: str, rejected: str, margin: float | None) -> tuple[str, str] | None:
        """(reason, detail) of the first filter the pair fails, in the order the module docstring lists."""
        p = self.params
        answers = {"chosen": chosen, "rejected": rejected}
        if pair_text.normalise(chosen) == pair_text.normalise(rejected):
            return "equal_answers", repr(chosen)
        if p.drop_yes_no:
            for name, text in answers.items():
                if pair_text.is_yes_no(text):
                    return "yes_no", f"{name}: {text!r}"
        if p.drop_rejected_in_chosen and rejected.lower() in chosen.lower():
            return "rejected_in_chosen", repr(rejected)
        if p.drop_duplicate_sentences:
            for name, text in answers.items():
                if pair_text.has_duplicate_sentence(text):
                    return "duplicate_sentence", f"{name}: {text!r}"
        degenerate = self._degenerate(chosen)
        if degenerate:
            return "degenerate_chosen", degenerate
        if p.max_words is not None:
            for name, text in answers.items():
                if (words := len(text.split())) > p.max_words:
                    return "too_long", f"{name}: {words} words > {p.max_words}"
        for name, text in answers.items():
            if pair_text.symbol_fraction(text) > p.max_non_alnum_fraction:
                return "mostly_symbols", f"{name}: {pair_text.symbol_fraction(text):.2f} > {p.max_non_alnum_fraction}"
        if p.max_length_ratio is not None:
            ratio = max(len(chosen), len(rejected)) / min(len(chosen), len(rejected))
            if ratio > p.max_length_ratio:
                return "length_ratio", f"{ratio:.2f} > {p.max_length_ratio}"
        if p.drop_numbers_only and pair_text.differ_only_in_numbers(chosen, rejected):
            return "numbers_only", f"{chosen!r} / {rejected!r}"
        if p.drop_count_disagreement and pair_text.count_disagreement(chosen, rejected):
            return "count_disagreement", f"{chosen!r} / {rejected!r}"
        if p.max_length_share is not None:
            share = pair_text.length_share(chosen, rejected)
            if share > p.max_length_share:
                return "mostly_length", f"{share:.2f} of the difference is length > {p.max_length_share}"
        if p.min_margin is not None and margin is not None and margin < p.min_margin:
            return "low_margin", f"{margin:.4g} < {p.min_margin}"
        return None

    def _degenerate(self, chosen: str) -> str | None:
        """Why the chosen answer is degenerate text, or None (both tests off: None)."""
        p = self.params
        if p.max_word_run is not None:
            word, run = pair_text.longest_word_run(chosen)
            if run > p.max_word_run:
                return f"chosen repeats {word!r} {run} times in a row > {p.max_word_run}"
        if p.min_chosen_words is not None and (n := len(pair_text.words(chosen))) < p.min_chosen_words:
            return f"chosen has {n} words < {p.min_chosen_words}: {chosen!r}"
        return None


SelectPairsParams.runtime = SelectPairs
