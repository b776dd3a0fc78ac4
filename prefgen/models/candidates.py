"""What an engine returns and how one generated row is read: shared by the transformers and the vLLM engine.

``TextRow`` follows one row token by token (decoded text, stop strings, prefgen's sentence-end rule in
``sentences.py``, the token budget) and says how many tokens make the result and why it ended. The transformers
engine pushes tokens as it chooses them; the vLLM engine pushes the tokens vLLM returned, so both engines end a row
at the same token by the same rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prefgen.models.sentences import find_sentence_end

CONTEXT_TOKENS = 16  # tokens of the answer so far used to decode new tokens with the right leading space


@dataclass(frozen=True)
class Candidate:
    """One generated continuation.

    ``token_ids`` are the generated tokens; a finished answer ends with its end-of-turn (EOS) token, which ``text``
    omits but whose log-prob counts, so an answer that stops is scored as "these words, then the end".
    ``finish_reason`` is "eos", "sentence" (a sentence ended), "stop" (a stop string appeared, included in the text,
    as transformers does) or "length" (the token budget ran out).
    """

    token_ids: tuple[int, ...]
    text: str
    token_logprobs: tuple[float, ...]
    logprob_sum: float
    logprob_mean: float
    finished: bool
    finish_reason: str

    @classmethod
    def build(cls, token_ids, text, token_logprobs, finish_reason) -> Candidate:
        logprobs = tuple(float(x) for x in token_logprobs)
        total = math.fsum(logprobs)
        return cls(
            tuple(int(t) for t in token_ids),
            text,
            logprobs,
            total,
            total / len(logprobs) if logprobs else float("nan"),
            finish_reason == "eos",
            finish_reason,
        )


@dataclass(frozen=True)
class DecodeSettings:
    max_new_tokens: int
    strategy: str = "greedy"  # greedy | sample | diverse
    temperature: float = 1.0
    top_p: float = 1.0
    diversity_penalty: float = 3.0
    stop_strings: tuple[str, ...] = ()
    stop_at_sentence_end: bool = False
    # Never chosen: image/video placeholders. Text holding one cannot be re-encoded with its image (the processor
    # and trl count placeholders against image features), so an answer must not contain them.
    banned_tokens: tuple[int, ...] = ()


class TextRow:
    """What one row generated so far, and whether it is done (EOS, stop string, sentence end or budget)."""

    def __init__(self, tokenizer, context_ids: list[int], eos_ids: frozenset[int], settings: DecodeSettings):
        self.tokenizer, self.eos_ids, self.settings = tokenizer, eos_ids, settings
        self.context = list(context_ids)
        self.context_text = self._raw_decode(self.context) if self.context else ""
        self.tokens: list[int] = []
        self.logprobs: list[float] = []
        self.text_lengths: list[int] = []  # decoded length after each token
        self.keep: int | None = None  # number of tokens that make the result, once done
        self.reason = ""

    @property
    def done(self) -> bool:
        return self.keep is not None

    def push(self, token: int, logprob: float) -> None:
        self.tokens.append(token)
        self.logprobs.append(logprob)
        if token in self.eos_ids:
            self.finish(len(self.tokens), "eos")
            return
        pending = False
        if self.settings.stop_strings or self.settings.stop_at_sentence_end:  # only these need the text
            text = self.decode(self.tokens)
            self.text_lengths.append(len(text))
            if self.settings.stop_strings and self._stop_string(text):
                return
            end = find_sentence_end(text) if self.settings.stop_at_sentence_end else None
            if end is not None and end.confirmed:
                self.finish(self._tokens_covering(end.end), "sentence")
                return
            pending = end is not None
        if len(self.tokens) >= self.settings.max_new_tokens:
            self.finish(len(self.tokens), "sentence" if pending else "length")

    def _stop_string(self, text: str) -> bool:
        hits = [(text.find(s) + len(s)) for s in self.settings.stop_strings if s and s in text]
        if hits:
            self.finish(self._tokens_covering(min(hits)), "stop")
        return bool(hits)

    def _tokens_covering(self, chars: int) -> int:
        """The fewest leading tokens whose decoded text reaches ``chars`` characters."""
        for count, length in enumerate(self.text_lengths, start=1):
            if length >= chars:
                return count
        return len(self.tokens)

    def finish(self, keep: int, reason: str) -> None:
        self.keep, self.reason = keep, reason

    def _raw_decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids`` as it reads after the answer so far: decoding a lone token would drop a leading space
        with sentencepiece-style tokenizers, so decode it together with the preceding tokens and cut those off."""
        if not self.context:
            return self._raw_decode(ids)
        full = self._raw_decode(self.context + ids)
        return full[len(self.context_text) :] if full.startswith(self.context_text) else self._raw_decode(ids)

    def result(self) -> Candidate:
        keep = self.keep if self.keep is not None else len(self.tokens)
        tokens = self.tokens[:keep]
        return Candidate.build(tokens, self.decode(tokens), self.logprobs[:keep], self.reason or "length")


@dataclass(frozen=True)
class ContinuationLogprobs:
    """Log-probs of one given continuation: per token, summed, and mean per token (nan when empty)."""

    token_ids: tuple[int, ...]
    token_logprobs: tuple[float, ...]
    logprob_sum: float
    logprob_mean: float

    @classmethod
    def build(cls, token_ids, token_logprobs) -> ContinuationLogprobs:
        values = tuple(float(x) for x in token_logprobs)
        total = math.fsum(values)
        return cls(tuple(int(t) for t in token_ids), values, total, total / len(values) if values else float("nan"))
