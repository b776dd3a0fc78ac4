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

import torch

from prefgen.models.candidates import Candidate, DecodeSettings, TextRow
from prefgen.models.hf import kvcache


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
    rows = [TextRow(tokenizer, context, eos_ids, settings) for context in contexts]
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
