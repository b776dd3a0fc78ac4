"""The VLM runtime: any transformers image-text-to-text model with its processor, used three ways.

- ``generate``: batched chat generation (greedy or sampled, n samples per prompt, stop strings, seeds).
- ``sentence_steps``: CSR's unit of search. For each (prompt, partial answer), k candidate next sentences, each
  stopping at a sentence end (found on decoded text, see ``sentences.py``) or at the end of the answer.
- ``logprobs``: log-probs of given continuations (self-reward, reference scores).

All three run on ``kvcache.CacheRows``: prompts (images + chat template) are encoded once; partial answers are fed on
top of that cache once per request; the k candidates then share it (see ``kvcache.py``). ``encode`` returns the
prompt cache so a search can reuse it across all its steps. Caches that cannot be extended across padding exactly
(Gemma 3's sliding-window layers once rows outgrow the window, Qwen3.5's linear attention) re-encode prompt +
partial answer in one pass instead; the k candidates still share that prefix. ``VLM.prefix_path`` chooses ("auto"
by default) and the choice is logged once per model on the ``prefgen.models`` logger. Log-probs are always of the
model's unprocessed distribution (temperature 1, no top-p, no diversity penalty).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from prefgen.core.errors import PrefgenError
from prefgen.models.candidates import CONTEXT_TOKENS, Candidate, ContinuationLogprobs, DecodeSettings
from prefgen.models.config import VLMConfig
from prefgen.models.hf import kvcache
from prefgen.models.hf.decoding import decode
from prefgen.models.loading import model_source, not_available_offline, resolve_device, resolve_dtype
from prefgen.models.prompts import Prompt, as_prompts, encode_continuation, encode_prompts
from prefgen.models.tokens import check_budget, end_token_ids, placeholder_token_ids, sample_seeds

PREFIX_PATHS = ("auto", "reuse", "re-encode")
log = logging.getLogger("prefgen.models")


class EncodedPrompts:
    """Prompts already run through the processor and, on first use, the model: their KV cache, reusable by every
    ``sentence_steps`` call. ``inputs`` (the processor outputs) serve the re-encoding path of caches that cannot be
    extended across padding (see ``VLM.prefix_path``)."""

    def __init__(self, prompts: list[Prompt], inputs: dict, model, state: kvcache.CacheRows | None = None):
        self.prompts, self.inputs, self._model, self._state = prompts, inputs, model, state

    @property
    def state(self) -> kvcache.CacheRows:
        if self._state is None:
            with torch.inference_mode():
                self._state = kvcache.prefill(self._model, self.inputs)
        return self._state

    @property
    def length(self) -> int:
        """Cache slots the prompts take (padded to the longest)."""
        return int(self.inputs["input_ids"].shape[1])

    def __len__(self) -> int:
        return len(self.prompts)


class VLM:
    """A vision-language model and its processor on transformers (the ``hf`` engine). Build it with ``VLM.load``
    (or wrap loaded objects)."""

    engine = "hf"

    def __init__(self, model, processor, name: str = "", batch_size: int = 8, prefix_path: str = "auto"):
        if prefix_path not in PREFIX_PATHS:
            raise ValueError(f"prefix_path must be one of {', '.join(PREFIX_PATHS)}, not {prefix_path!r}")
        # "auto": reuse the prompt cache (feeding partial answers on top) whenever the cache allows it exactly,
        # else re-encode prompt + partial answer; "reuse" / "re-encode" force one path ("reuse" is refused where
        # it would not be exact).
        self.prefix_path = prefix_path
        self._logged_paths: set[str] = set()
        self.model = model.eval()
        self.processor = processor
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.batch_size = batch_size
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"  # generation appends on the right, so prompts pad on the left
        self.eos_ids = end_token_ids(model, self.tokenizer)
        self.placeholder_ids = placeholder_token_ids(model, processor)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token_id = self.pad_id

    @classmethod
    def load(cls, config=None, *, base_dir: str | Path | None = None, batch_size: int = 8, **fields) -> VLM:
        """Load from a recipe ``VLMConfig`` (or its fields as keywords, e.g. ``VLM.load(path="tiny/llava")``)."""
        fields = {key: str(value) if isinstance(value, Path) else value for key, value in fields.items()}
        config = config if config is not None else VLMConfig(**fields)
        source, local = model_source(config.id, config.path, base_dir)
        revision = None if local else config.revision
        common = dict(revision=revision, trust_remote_code=config.trust_remote_code)
        try:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            processor = AutoProcessor.from_pretrained(source, **common)
            model = AutoModelForImageTextToText.from_pretrained(
                source, dtype=resolve_dtype(config.dtype), device_map=resolve_device(config.device), **common
            )
        except OSError as exc:
            if local:
                raise PrefgenError(f"cannot load the model in {source}: {str(exc).splitlines()[0]}") from exc
            raise not_available_offline(source, revision) from exc
        return cls(model, processor, name=source, batch_size=batch_size)

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ------------------------------------------------------------------------------------------------ prompts

    def encode(self, prompts: Sequence[Prompt] | Prompt) -> EncodedPrompts:
        """Prompts (with their images) through the processor, and through the model in one forward pass the first
        time their KV cache is needed; pass the result to ``sentence_steps`` or ``logprobs`` to reuse it across
        calls. Families whose cache cannot be extended exactly (see ``prefix_path``) never run that pass. It holds
        memory until dropped."""
        prompts = as_prompts(prompts)
        if not prompts:
            raise PrefgenError("no prompts to encode")
        return self._processed(prompts)

    def _processed(self, prompts: list[Prompt]) -> EncodedPrompts:
        """Prompts through the processor only; the model runs when (and if) their cache is first needed."""
        inputs = encode_prompts(self.processor, prompts, self.device)
        inputs = {k: v.to(self.model.dtype) if torch.is_floating_point(v) else v for k, v in inputs.items()}
        return EncodedPrompts(prompts, inputs, self.model)

    def _encoded_chunks(self, prompts, rows: list[int]):
        """Yield (encoded prompts, request indices, their rows in it), at most ``batch_size`` prompts encoded and
        ``batch_size`` requests decoded at a time."""
        count = len(prompts) if isinstance(prompts, EncodedPrompts) else len(as_prompts(prompts))
        if any(not 0 <= row < count for row in rows):
            raise ValueError(f"prompt rows must lie in 0..{count - 1}")
        if isinstance(prompts, EncodedPrompts):
            groups = [(prompts, list(range(len(rows))), 0)]
        else:
            prompts = as_prompts(prompts)
            groups = []
            for start in range(0, count, self.batch_size):
                wanted = range(start, min(start + self.batch_size, count))
                requests = [i for i, row in enumerate(rows) if row in wanted]
                if requests:  # encoded lazily below, one chunk of prompts alive at a time
                    groups.append(([prompts[i] for i in wanted], requests, start))
        for source, requests, offset in groups:
            encoded = source if isinstance(source, EncodedPrompts) else self._processed(source)
            for at in range(0, len(requests), self.batch_size):
                chunk = requests[at : at + self.batch_size]
                yield encoded, chunk, [rows[i] - offset for i in chunk]

    # ------------------------------------------------------------------------------------------------ generation

    def generate(
        self,
        prompts: Sequence[Prompt] | Prompt,
        *,
        n: int = 1,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
        seed: int | Sequence[int] | None = 0,
    ) -> list[list[Candidate]]:
        """``n`` answers per prompt; greedy when ``temperature`` is 0, else sampled.

        ``seed``: one per prompt (e.g. a stage's per-row seed), or one for the call from which each prompt's seed is
        derived by its position; either way an answer does not depend on how prompts are batched. None: unseeded.
        """
        prompts = as_prompts(prompts)
        check_budget(max_new_tokens, temperature, top_p, n)
        if temperature == 0 and n > 1:
            raise ValueError("greedy decoding gives n identical answers; sample (temperature > 0) or use n=1")
        settings = DecodeSettings(
            max_new_tokens,
            "greedy" if temperature == 0 else "sample",
            temperature or 1.0,
            top_p,
            stop_strings=tuple(stop),
            banned_tokens=self.placeholder_ids,
        )
        results: list[list[Candidate]] = []
        rows = list(range(len(prompts)))
        with torch.inference_mode():
            for encoded, requests, local_rows in self._encoded_chunks(prompts, rows):
                state = encoded.state.select(local_rows).repeat_each(n)
                contexts = [[] for _ in range(state.rows)]
                found = decode(
                    self.model,
                    self.tokenizer,
                    state,
                    contexts,
                    list(range(state.rows)),
                    settings,
                    self.eos_ids,
                    self._generators(seed, requests, n, len(prompts)),
                )
                results += [found[i * n : (i + 1) * n] for i in range(len(requests))]
        return results

    def sentence_steps(
        self,
        prompts: Sequence[Prompt] | EncodedPrompts,
        partial_answers: Sequence[str],
        *,
        k: int = 5,
        rows: Sequence[int] | None = None,
        max_new_tokens: int = 70,
        strategy: str = "sample",
        temperature: float = 1.0,
        top_p: float = 1.0,
        diversity_penalty: float = 3.0,
        seed: int | Sequence[int] | None = 0,
    ) -> list[list[Candidate]]:
        """k candidate next sentences for each partial answer; ``partial_answers[i]`` continues ``prompts[rows[i]]``.

        ``strategy``: "sample" (temperature, top-p) or "diverse" (CSR's diverse group search, one beam per group,
        Hamming ``diversity_penalty``). Join a candidate to its partial answer as ``partial + candidate.text``:
        the text keeps its leading space. ``candidate.finished`` means the answer ended (EOS). ``seed``: one per
        partial answer, or one for the call (see ``generate``).
        """
        if strategy not in ("sample", "diverse"):
            raise ValueError(f"strategy must be 'sample' or 'diverse', not {strategy!r}")
        check_budget(max_new_tokens, temperature if strategy == "sample" else 1.0, top_p, k)
        if strategy == "sample" and temperature == 0:
            raise ValueError("sampling needs temperature > 0 (strategy='diverse' is the deterministic one)")
        rows = list(range(len(partial_answers))) if rows is None else list(rows)
        if len(rows) != len(partial_answers):
            raise ValueError("give one prompt row per partial answer")
        settings = DecodeSettings(
            max_new_tokens,
            strategy,
            temperature,
            top_p,
            diversity_penalty,
            stop_at_sentence_end=True,
            banned_tokens=self.placeholder_ids,
        )
        results: dict[int, list[Candidate]] = {}
        with torch.inference_mode():
            for encoded, requests, local_rows in self._encoded_chunks(prompts, rows):
                answers = [encode_continuation(self.tokenizer, partial_answers[i]) for i in requests]
                state, _, _ = self._continued(encoded, local_rows, answers, max_new_tokens)
                state = state.repeat_each(k)
                contexts = [ids[-CONTEXT_TOKENS:] for ids in answers for _ in range(k)]
                groups = [i for i in range(len(requests)) for _ in range(k)]
                generators = self._generators(seed, requests, k, len(rows)) if strategy == "sample" else None
                found = decode(self.model, self.tokenizer, state, contexts, groups, settings, self.eos_ids, generators)
                for i, request in enumerate(requests):
                    results[request] = found[i * k : (i + 1) * k]
        return [results[i] for i in range(len(rows))]

    # ------------------------------------------------------------------------------------------------ scoring

    def logprobs(
        self,
        prompts: Sequence[Prompt] | EncodedPrompts,
        continuations: Sequence[str | Sequence[int]],
        *,
        rows: Sequence[int] | None = None,
        append_eos: bool = False,
    ) -> list[ContinuationLogprobs]:
        """Log-probs of each continuation (text, or token ids as generated) after ``prompts[rows[i]]``."""
        rows = list(range(len(continuations))) if rows is None else list(rows)
        if len(rows) != len(continuations):
            raise ValueError("give one prompt row per continuation")
        ids = [
            encode_continuation(self.tokenizer, c) if isinstance(c, str) else [int(t) for t in c]
            for c in continuations
        ]
        if append_eos:
            ids = [tokens + [self.tokenizer.eos_token_id] for tokens in ids]
        results: dict[int, ContinuationLogprobs] = {}
        with torch.inference_mode():
            for encoded, requests, local_rows in self._encoded_chunks(prompts, rows):
                token_lists = [ids[i] for i in requests]
                _, segment, first = self._continued(encoded, local_rows, token_lists, 0, keep_all_logits=True)
                for i, request in enumerate(requests):
                    results[request] = _score(token_lists[i], first[i], segment[i] if segment is not None else None)
        return [results[i] for i in range(len(rows))]

    def _continued(
        self,
        encoded: EncodedPrompts,
        rows: list[int],
        token_lists: list[list[int]],
        then: int,
        keep_all_logits: bool = False,
    ):
        """Rows ``rows`` of ``encoded`` continued by ``token_lists``, ready to generate ``then`` more tokens:
        (state, logits of the new positions or None, logits before each continuation)."""
        path = self._path_for(encoded, token_lists, then)
        if path == "reuse":
            before = encoded.state.select(rows)
            state, segment = kvcache.extend(
                self.model, before, token_lists, self.pad_id, keep_all_logits=keep_all_logits
            )
            return state, segment, before.logits
        if rows == list(range(len(encoded))):
            inputs = encoded.inputs
        else:  # image tensors are laid out per family, so the processor makes them again for these rows
            inputs = self._processed([encoded.prompts[row] for row in rows]).inputs
        if not any(token_lists):
            state = kvcache.prefill(self.model, inputs)
            return state, None, state.logits
        return kvcache.prefill_continued(self.model, inputs, token_lists, self.pad_id, keep_all_logits)

    def _path_for(self, encoded: EncodedPrompts, token_lists: list[list[int]], then: int) -> str:
        """ "reuse" when extending the cached prompts across padding is exact for this call, else "re-encode"; logged
        once per model and path."""
        if self.prefix_path == "re-encode":
            path, why = "re-encode", "forced (prefix_path='re-encode')"
        else:
            limit = self.reuse_limit
            span = encoded.length + max((len(t) for t in token_lists), default=0) + then
            if limit is None or span < limit:
                path = "reuse"
                why = "plain full-attention cache" if limit is None else f"rows stay inside the {limit}-token window"
            elif limit == 0:
                path, why = "re-encode", f"{self.cache_kind} has layers a padding gap would corrupt"
            else:
                path, why = "re-encode", f"rows may outgrow the {limit}-token sliding window"
            if path == "re-encode" and self.prefix_path == "reuse":
                raise PrefgenError(f"prefix reuse is not exact for {self.name}: {why}")
        if path not in self._logged_paths:
            self._logged_paths.add(path)
            log.info(
                "%s: prefix %s (%s; cache %s)",
                self.name,
                "reuse" if path == "reuse" else "re-encoding",
                why,
                self.cache_kind,
            )
        return path

    @property
    def reuse_limit(self) -> int | None:
        """See ``kvcache.reuse_limit``: None (reuse always exact), a sliding window, or 0 (never reuse)."""
        self._cache_facts()
        return self._reuse_limit

    @property
    def cache_kind(self) -> str:
        self._cache_facts()
        return self._cache_kind

    def _cache_facts(self) -> None:
        if not hasattr(self, "_reuse_limit"):
            from transformers import DynamicCache

            cache = DynamicCache(config=self.model.config)  # the cache every prefill builds, still empty
            self._reuse_limit, self._cache_kind = kvcache.reuse_limit(cache), kvcache.cache_kind(cache)

    def _generators(self, seed, requests: list[int], per_request: int, count: int) -> list[torch.Generator] | None:
        """One generator per decoded row, seeded from (request's seed, sample index) and nothing about the batch."""
        seeds = sample_seeds(seed, requests, per_request, count)
        if seeds is None:
            return None
        return [torch.Generator(device=self.device).manual_seed(s) for s in seeds]


def _score(tokens: list[int], first_logits: torch.Tensor, segment: torch.Tensor | None) -> ContinuationLogprobs:
    """Token log-probs: the first from the prompt's last logits, the rest from the right-aligned segment."""
    if not tokens:
        return ContinuationLogprobs.build((), ())
    first = torch.log_softmax(first_logits, dim=-1)[tokens[0]].reshape(1)
    following = torch.tensor(tokens[1:], device=first_logits.device)
    start = segment.shape[0] - len(tokens)
    rest = torch.log_softmax(segment[start:-1], dim=-1).gather(1, following[:, None])[:, 0]
    return ContinuationLogprobs.build(tokens, torch.cat([first, rest]).tolist())
