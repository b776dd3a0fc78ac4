"""The token-by-token loop over cached rows: choose a token per row, track when each row is done, report results.

Token choice: greedy; sampling (temperature, top-p, one seeded ``torch.Generator`` per row, so a row's draws do not
depend on its batch); or "diverse": each row of a group is greedy but pays ``diversity_penalty`` for every earlier
row of its group that picked the same token at this step. That is Hamming-diverse group beam search with one beam
per group, the setting CSR's released code uses (``num_beams = num_beam_groups = 5``); transformers 5 moved group
beam search to Hub code, which is unavailable offline and not to be trusted, so it is done here on the local cache.
Image/video placeholder tokens are never chosen (see ``DecodeSettings.banned_tokens``).

Every reported log-prob is of the *unprocessed* distribution: ``log_softmax`` of the raw logits at temperature 1,
without top-p or the diversity penalty, so scores are comparable whatever produced the tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from prefgen.models import kvcache
from prefgen.models.sentences import find_sentence_end


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


class _Row:
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
            self._finish(len(self.tokens), "eos")
            return
        pending = False
        if self.settings.stop_strings or self.settings.stop_at_sentence_end:  # only these need the text
            text = self.decode(self.tokens)
            self.text_lengths.append(len(text))
            if self.settings.stop_strings and self._stop_string(text):
                return
            end = find_sentence_end(text) if self.settings.stop_at_sentence_end else None
            if end is not None and end.confirmed:
                self._finish(self._tokens_covering(end.end), "sentence")
                return
            pending = end is not None
        if len(self.tokens) >= self.settings.max_new_tokens:
            self._finish(len(self.tokens), "sentence" if pending else "length")

    def _stop_string(self, text: str) -> bool:
        hits = [(text.find(s) + len(s)) for s in self.settings.stop_strings if s and s in text]
        if hits:
            self._finish(self._tokens_covering(min(hits)), "stop")
        return bool(hits)

    def _tokens_covering(self, chars: int) -> int:
        """The fewest leading tokens whose decoded text reaches ``chars`` characters."""
        for count, length in enumerate(self.text_lengths, start=1):
            if length >= chars:
                return count
        return len(self.tokens)

    def _finish(self, keep: int, reason: str) -> None:
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


def decode(
    model,
    tokenizer,
    state: kvcache.CacheRows,
    contexts: list[list[int]],
    groups: list[int],
    settings: DecodeSettings,
    eos_ids: frozenset[int],
    generators: list[torch.Generator] | None,
) -> list[Candidate]:
    """Generate for every row of ``state`` until each is done; ``groups[r]`` ties rows for diverse decoding.

    Each row samples from its own generator, so what a row draws does not depend on the other rows of the batch.
    """
    rows = [_Row(tokenizer, context, eos_ids, settings) for context in contexts]
    active = list(range(len(rows)))
    while active and settings.max_new_tokens > 0:
        row_generators = [generators[r] for r in active] if generators is not None else None
        tokens = _choose(state.logits, settings, [groups[r] for r in active], row_generators)
        chosen = torch.log_softmax(state.logits, dim=-1).gather(1, tokens[:, None])[:, 0]
        for row, token, logprob in zip(active, tokens.tolist(), chosen.tolist()):
            rows[row].push(token, logprob)
        still = [i for i, row in enumerate(active) if not rows[row].done]
        if not still:
            break
        if len(still) < len(active):
            state, tokens = state.select(still), tokens[still]
            active = [active[i] for i in still]
        state = kvcache.step(model, state, tokens)
    return [row.result() for row in rows]


def _choose(
    logits: torch.Tensor, settings: DecodeSettings, groups: list[int], generators: list[torch.Generator] | None
) -> torch.Tensor:
    if settings.banned_tokens:
        logits = logits.index_fill(1, torch.tensor(settings.banned_tokens, device=logits.device), float("-inf"))
    if settings.strategy == "greedy":
        return logits.argmax(dim=-1)
    if settings.strategy == "sample":
        scores = logits / settings.temperature
        if settings.top_p < 1.0:
            scores = _top_p(scores, settings.top_p)
        probs = torch.softmax(scores, dim=-1)
        if generators is None:
            return torch.multinomial(probs, 1)[:, 0]
        return torch.cat([torch.multinomial(probs[i : i + 1], 1, generator=g)[:, 0] for i, g in enumerate(generators)])
    if settings.strategy == "diverse":
        return _diverse_greedy(logits, groups, settings.diversity_penalty)
    raise ValueError(f"unknown decoding strategy {settings.strategy!r}")


def _top_p(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches ``top_p`` (always at least one)."""
    ordered, order = scores.sort(dim=-1, descending=True)
    probs = ordered.softmax(dim=-1)
    drop = probs.cumsum(dim=-1) - probs > top_p
    ordered = ordered.masked_fill(drop, float("-inf"))
    return torch.full_like(scores, float("-inf")).scatter(-1, order, ordered)


def _diverse_greedy(logits: torch.Tensor, groups: list[int], penalty: float) -> torch.Tensor:
    """Row by row within each group: argmax of log-probs minus ``penalty`` x (times earlier rows chose the token)."""
    logprobs = torch.log_softmax(logits, dim=-1)
    chosen = torch.empty(len(groups), dtype=torch.long, device=logits.device)
    used: dict[int, torch.Tensor] = {}
    for row, group in enumerate(groups):
        counts = used.setdefault(group, torch.zeros(logits.shape[-1], device=logits.device))
        chosen[row] = torch.argmax(logprobs[row] - penalty * counts)
        counts[chosen[row]] += 1
    return chosen
