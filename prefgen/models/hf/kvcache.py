"""Rows of token sequences held in a transformers KV cache, grown, copied and pruned without re-encoding.

This is how prefix reuse works. A batch of prompts (images + chat template) is run through the model once
(``prefill``); the resulting ``CacheRows`` can then be gathered (several partial answers per prompt), extended by
per-row token lists (the partial answers, or one sampled token per row), repeated (k candidates per partial answer)
and pruned (finished candidates), all on the cached keys and values. Only tokens that were never seen are encoded.

Positions are kept explicitly, one next position per row, because rows are left-padded and extended with padding in
the middle, and because Qwen2-VL / Qwen2.5-VL use 3-D multimodal rotary positions that only the prefill can compute
(``model._prepare_position_ids_for_generation`` is the model's own recipe, the one ``generate`` uses). After the
prefill every family's positions simply advance by one per real token, which is what ``generate`` does as well.

Padding in the middle is harmless for full attention (it is masked), but not for every cache: a sliding-window layer
counts cache slots, padding included, so a gap can push real tokens out of its window; a linear-attention
(recurrent) layer runs its state through the gap. ``reuse_limit`` says how long a row may grow before reuse
stops being exact; past it, ``prefill_continued`` encodes prompt and continuation together, without a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class CacheRows:
    """A batch of sequences in a KV cache, with what is needed to feed them more tokens.

    ``attention_mask`` (rows, length) marks real tokens (padding can sit anywhere); ``next_positions`` is the position
    id of each row's next token, shaped like the model's position ids with length 1; ``logits`` (rows, vocab, float32)
    predict each row's next token.
    """

    cache: object
    attention_mask: torch.Tensor
    next_positions: torch.Tensor
    logits: torch.Tensor

    @property
    def rows(self) -> int:
        return self.attention_mask.shape[0]

    def select(self, index: torch.Tensor | list[int]) -> CacheRows:
        """A new ``CacheRows`` with the given rows (repeats allowed), copying their keys and values."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.attention_mask.device)
        return CacheRows(
            _select_cache(self.cache, index),
            self.attention_mask[index],
            self.next_positions.index_select(_batch_dim(self.next_positions), index),
            self.logits[index],
        )

    def repeat_each(self, times: int) -> CacheRows:
        """Each row ``times`` times in a row (row 0, 0, 0, 1, 1, 1, ...): k candidates share one prefix."""
        index = torch.arange(self.rows, device=self.attention_mask.device).repeat_interleave(times)
        return self.select(index)


def prefill(model, inputs: dict) -> CacheRows:
    """Run processor outputs (left-padded prompts with their images) through the model once, keeping the cache."""
    from transformers import DynamicCache

    positions = model._prepare_position_ids_for_generation(inputs["input_ids"], dict(inputs))
    output = model(
        **inputs,
        position_ids=positions,
        past_key_values=DynamicCache(config=model.config),
        use_cache=True,
        logits_to_keep=1,
    )
    return CacheRows(
        output.past_key_values, inputs["attention_mask"], positions[..., -1:] + 1, output.logits[:, -1].float()
    )


def extend(
    model, state: CacheRows, token_lists: list[list[int]], pad_id: int, keep_all_logits: bool = False
) -> tuple[CacheRows, torch.Tensor | None]:
    """Feed each row its own tokens (any lengths, padded on the left of the new segment) in one forward pass.

    Returns the extended rows and, with ``keep_all_logits``, the float32 logits of every new position
    (rows, longest list, vocab); row ``r``'s tokens sit right-aligned in that segment. Rows with no new tokens keep
    their previous next-token logits.
    """
    device = state.attention_mask.device
    longest = max((len(tokens) for tokens in token_lists), default=0)
    if longest == 0:
        return state, None
    lengths = torch.tensor([len(tokens) for tokens in token_lists], device=device)
    ids = torch.full((state.rows, longest), pad_id, dtype=torch.long, device=device)
    for row, tokens in enumerate(token_lists):
        if tokens:
            ids[row, longest - len(tokens) :] = torch.tensor(tokens, dtype=torch.long, device=device)
    pad = longest - lengths  # (rows,)
    steps = torch.arange(longest, device=device)
    new_mask = (steps[None, :] >= pad[:, None]).to(state.attention_mask.dtype)
    offsets = (steps[None, :] - pad[:, None]).clamp(min=0)  # padding gets the row's next position; it is masked
    positions = state.next_positions + offsets.view(*([1] * (state.next_positions.dim() - 2)), *offsets.shape)
    mask = torch.cat([state.attention_mask, new_mask], dim=1)
    output = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=state.cache,
        use_cache=True,
        logits_to_keep=0 if keep_all_logits else 1,
    )
    last = output.logits[:, -1].float()
    logits = torch.where((lengths > 0)[:, None], last, state.logits)
    grown = CacheRows(
        output.past_key_values, mask, state.next_positions + _per_row(lengths, state.next_positions), logits
    )
    return grown, (output.logits.float() if keep_all_logits else None)


def step(model, state: CacheRows, tokens: torch.Tensor) -> CacheRows:
    """Feed one token per row (the decode step of generation)."""
    ones = torch.ones((state.rows, 1), dtype=state.attention_mask.dtype, device=state.attention_mask.device)
    mask = torch.cat([state.attention_mask, ones], dim=1)
    output = model(
        input_ids=tokens.view(-1, 1),
        attention_mask=mask,
        position_ids=state.next_positions,
        past_key_values=state.cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return CacheRows(output.past_key_values, mask, state.next_positions + 1, output.logits[:, -1].float())


def reuse_limit(cache) -> int | None:
    """How many cache slots (prompt, padding, continuation and generated tokens) a row may span while extending it
    with padding in the middle stays exact: None when unlimited (only plain full-attention layers), the smallest
    sliding window when some layers slide, 0 when the cache has layers a gap would corrupt (linear attention,
    unknown kinds)."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    limit = None
    for layer in getattr(cache, "layers", None) or [None]:
        if type(layer) is DynamicLayer:
            continue
        if type(layer) is DynamicSlidingWindowLayer:
            window = int(layer.sliding_window)
            limit = window if limit is None else min(limit, window)
            continue
        return 0
    return limit


def cache_kind(cache) -> str:
    """``DynamicCache`` with its layer kinds, e.g. ``DynamicCache[DynamicLayer, DynamicSlidingWindowLayer]``."""
    kinds = dict.fromkeys(type(layer).__name__ for layer in getattr(cache, "layers", None) or [])
    return f"{type(cache).__name__}[{', '.join(kinds)}]"


def prefill_continued(
    model, inputs: dict, token_lists: list[list[int]], pad_id: int, keep_all_logits: bool = False
) -> tuple[CacheRows, torch.Tensor | None, torch.Tensor]:
    """Encode prompts (processor outputs) and each row's continuation tokens in one forward pass, no gap between
    them: the path for caches that cannot be extended across padding. Every per-token input of the processor
    (``input_ids``, ``attention_mask``, ``token_type_ids``, ``mm_token_type_ids``, ...) is continued (ids with the
    tokens, the mask with ones, the rest with zeros: text) and the rows are left-padded again.

    Returns the rows, with ``keep_all_logits`` the logits of the continuation positions (right-aligned, like
    ``extend``), and each row's logits before its continuation (what predicts its first token)."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    device = ids.device
    keys = [key for key, value in inputs.items() if torch.is_tensor(value) and value.shape == ids.shape]
    rows = []
    for row, tokens in enumerate(token_lists):
        real = mask[row].bool()
        extra = torch.tensor(tokens, dtype=torch.long, device=device)
        rows.append(
            {key: torch.cat([inputs[key][row][real], _continuation(key, extra, inputs[key].dtype)]) for key in keys}
        )
    width = max(len(row["input_ids"]) for row in rows)
    merged = dict(inputs)
    for key in keys:
        fill = pad_id if key == "input_ids" else 0
        merged[key] = torch.stack(
            [
                torch.cat([torch.full((width - len(row[key]),), fill, dtype=row[key].dtype, device=device), row[key]])
                for row in rows
            ]
        )
    longest = max(len(tokens) for tokens in token_lists)
    positions = model._prepare_position_ids_for_generation(merged["input_ids"], dict(merged))
    from transformers import DynamicCache

    output = model(
        **merged,
        position_ids=positions,
        past_key_values=DynamicCache(config=model.config),
        use_cache=True,
        logits_to_keep=longest + 1,
    )
    logits = output.logits.float()
    lengths = torch.tensor([len(tokens) for tokens in token_lists], device=device)
    first = logits[torch.arange(len(token_lists), device=device), -1 - lengths]
    state = CacheRows(output.past_key_values, merged["attention_mask"], positions[..., -1:] + 1, logits[:, -1])
    return state, (logits[:, 1:] if keep_all_logits and longest else None), first


def _continuation(key: str, tokens: torch.Tensor, dtype) -> torch.Tensor:
    if key == "input_ids":
        return tokens.to(dtype)
    value = 1 if key == "attention_mask" else 0
    return torch.full_like(tokens, value, dtype=dtype)


def _batch_dim(positions: torch.Tensor) -> int:
    return positions.dim() - 2  # (rows, 1) or (axes, rows, 1)


def _per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(*([1] * (like.dim() - 2)), -1, 1).to(like.dtype)


def _select_cache(cache, index: torch.Tensor):
    """A new cache holding the given batch rows of ``cache`` (the original is left untouched), whatever its layers
    (full, sliding-window, linear attention): each layer is copied and gathered with its own ``reorder_cache``,
    which replaces its tensors rather than writing into them."""
    import copy

    layers = getattr(cache, "layers", None)
    if layers is None:
        raise NotImplementedError(f"cannot copy rows of a {type(cache).__name__}: it has no per-layer storage")
    chosen = copy.copy(cache)
    chosen.layers = []
    for layer in layers:
        clone = copy.copy(layer)
        for name, value in vars(layer).items():
            if isinstance(value, dict):  # per-state tensors of linear-attention layers
                setattr(clone, name, dict(value))
        clone.reorder_cache(index)
        chosen.layers.append(clone)
    return chosen
