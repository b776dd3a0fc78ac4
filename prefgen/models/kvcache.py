"""Rows of token sequences held in a transformers KV cache, grown, copied and pruned without re-encoding.

This is how prefix reuse works. A batch of prompts (images + chat template) is run through the model once
(``prefill``); the resulting ``CacheRows`` can then be gathered (several partial answers per prompt), extended by
per-row token lists (the partial answers, or one sampled token per row), repeated (k candidates per partial answer)
and pruned (finished candidates), all on the cached keys and values. Only tokens that were never seen are encoded.

Positions are kept explicitly, one next position per row, because rows are left-padded and extended with padding in
the middle, and because Qwen2-VL / Qwen2.5-VL use 3-D multimodal rotary positions that only the prefill can compute
(``model._prepare_position_ids_for_generation`` is the model's own recipe, the one ``generate`` uses). After the
prefill every family's positions simply advance by one per real token, which is what ``generate`` does as well.
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
        return CacheRows(_select_cache(self.cache, index), self.attention_mask[index],
                         self.next_positions.index_select(_batch_dim(self.next_positions), index), self.logits[index])

    def repeat_each(self, times: int) -> CacheRows:
        """Each row ``times`` times in a row (row 0, 0, 0, 1, 1, 1, ...): k candidates share one prefix."""
        index = torch.arange(self.rows, device=self.attention_mask.device).repeat_interleave(times)
        return self.select(index)


def prefill(model, inputs: dict) -> CacheRows:
    """Run processor outputs (left-padded prompts with their images) through the model once, keeping the cache."""
    from transformers import DynamicCache

    positions = model._prepare_position_ids_for_generation(inputs["input_ids"], dict(inputs))
    output = model(**inputs, position_ids=positions, past_key_values=DynamicCache(config=model.config),
                   use_cache=True, logits_to_keep=1)
    return CacheRows(output.past_key_values, inputs["attention_mask"], positions[..., -1:] + 1,
                     output.logits[:, -1].float())


def extend(model, state: CacheRows, token_lists: list[list[int]], pad_id: int,
           keep_all_logits: bool = False) -> tuple[CacheRows, torch.Tensor | None]:
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
            ids[row, longest - len(tokens):] = torch.tensor(tokens, dtype=torch.long, device=device)
    pad = longest - lengths  # (rows,)
    steps = torch.arange(longest, device=device)
    new_mask = (steps[None, :] >= pad[:, None]).to(state.attention_mask.dtype)
    offsets = (steps[None, :] - pad[:, None]).clamp(min=0)  # padding gets the row's next position; it is masked
    positions = state.next_positions + offsets.view(*([1] * (state.next_positions.dim() - 2)), *offsets.shape)
    mask = torch.cat([state.attention_mask, new_mask], dim=1)
    output = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=state.cache,
                   use_cache=True, logits_to_keep=0 if keep_all_logits else 1)
    last = output.logits[:, -1].float()
    logits = torch.where((lengths > 0)[:, None], last, state.logits)
    grown = CacheRows(output.past_key_values, mask, state.next_positions + _per_row(lengths, state.next_positions),
                      logits)
    return grown, (output.logits.float() if keep_all_logits else None)


def step(model, state: CacheRows, tokens: torch.Tensor) -> CacheRows:
    """Feed one token per row (the decode step of generation)."""
    ones = torch.ones((state.rows, 1), dtype=state.attention_mask.dtype, device=state.attention_mask.device)
    mask = torch.cat([state.attention_mask, ones], dim=1)
    output = model(input_ids=tokens.view(-1, 1), attention_mask=mask, position_ids=state.next_positions,
                   past_key_values=state.cache, use_cache=True, logits_to_keep=1)
    return CacheRows(output.past_key_values, mask, state.next_positions + 1, output.logits[:, -1].float())


def _batch_dim(positions: torch.Tensor) -> int:
    return positions.dim() - 2  # (rows, 1) or (axes, rows, 1)


def _per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(*([1] * (like.dim() - 2)), -1, 1).to(like.dtype)


def _select_cache(cache, index: torch.Tensor):
    """A new DynamicCache holding the given batch rows of ``cache`` (the original is left untouched)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if layers is None or not all(type(layer) is DynamicLayer for layer in layers):
        raise NotImplementedError(f"prefix reuse needs a plain DynamicCache; this model uses {type(cache).__name__} "
                                  "with sliding-window or other special layers")
    copy = DynamicCache()
    for layer_index, layer in enumerate(layers):
        if layer.is_initialized and layer.keys.numel():
            copy.update(layer.keys.index_select(0, index), layer.values.index_select(0, index), layer_index)
    return copy
