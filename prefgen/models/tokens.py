"""Token facts both engines need, read from the model's config, generation config and processor, and the seeds of
sampled rows: one per (request seed, sample index), never anything about the batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefgen.core.errors import PrefgenError


def sample_seeds(seed, requests: list[int], per_request: int, count: int) -> list[int] | None:
    """A 62-bit seed for each sample of each request: from the request's own seed (``seed`` a sequence, one per
    request) or from (the call's seed, the request's position), and the sample's index; None when unseeded."""
    if seed is None:
        return None
    if isinstance(seed, Sequence):
        if len(seed) != count:
            raise ValueError(f"give one seed per request ({count}), or a single seed")
        bases = [[int(seed[request]) % 2**64] for request in requests]
    else:
        bases = [[int(seed) % 2**64, request] for request in requests]
    seeds = []
    for base in bases:
        for sample in range(per_request):
            state = np.random.SeedSequence([*base, sample]).generate_state(2, dtype=np.uint32)
            seeds.append(int(state[0]) << 31 | int(state[1]) >> 1)
    return seeds


def check_budget(max_new_tokens: int, temperature: float, top_p: float, count: int) -> None:
    if max_new_tokens < 0 or temperature < 0 or not 0 < top_p <= 1 or count < 1:
        raise ValueError("need max_new_tokens >= 0, temperature >= 0, 0 < top_p <= 1 and at least one answer")


def end_token_ids(model, tokenizer) -> frozenset[int]:
    """Tokens that end an answer: the generation config's eos ids and the tokenizer's eos (end of turn)."""
    ids = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is not None:
        ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    if not ids:
        raise PrefgenError("the model defines no end-of-sequence token; set eos_token_id in its generation_config")
    return frozenset(int(i) for i in ids)


def placeholder_token_ids(model, processor=None) -> tuple[int, ...]:
    """The ids that stand for image or video features in the text: the model's (LLaVA's ``image_token_index`` and
    friends) and the processor's text placeholders, which can differ (Gemma 3 writes ``<start_of_image>`` and
    expands it into soft tokens)."""
    names = ("image_token_id", "image_token_index", "video_token_id", "video_token_index")
    ids = {getattr(model.config, name, None) for name in names}
    ids |= {getattr(processor, name, None) for name in ("image_token_id", "video_token_id")}
    tokenizer = getattr(processor, "tokenizer", None)
    for name in ("image_token", "video_token"):
        token = getattr(processor, name, None)
        if isinstance(token, str) and tokenizer is not None:
            found = tokenizer.convert_tokens_to_ids(token)
            ids.add(found if found != tokenizer.unk_token_id else None)
    return tuple(sorted(int(i) for i in ids if isinstance(i, int) and i >= 0))
