"""The VLM runtime every stage sees: one interface, two engines.

- ``hf``: transformers with prefgen's own decoding loop and KV-cache reuse (``models/hf/``); any device torch sees.
- ``vllm``: vLLM in this process (``models/vllm/``): the same calls and the same row-ending rules, on vLLM's
  continuous batching and prefix cache; its GPU build or its CPU build.

Both answer ``generate``, ``sentence_steps``, ``logprobs`` and ``encode`` with the same arguments and the same
result types (``models/candidates.py``); stages, executors and the cache never ask which one runs. A recipe
picks one with ``models.vlm.engine`` (default ``hf``, so a recipe's rows never depend on what is installed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class VLMRuntime(Protocol):
    name: str
    engine: str

    def encode(self, prompts): ...
    def generate(self, prompts, *, n=1, max_new_tokens=256, temperature=0.0, top_p=1.0, stop=(), seed=0): ...
    def sentence_steps(self, prompts, partial_answers, *, k=5, rows=None, max_new_tokens=70, **decoding): ...
    def logprobs(self, prompts, continuations, *, rows=None, append_eos=False): ...


def load_vlm(config, *, base_dir: str | Path | None = None) -> VLMRuntime:
    """The recipe's VLM on the recipe's engine."""
    if config.engine == "vllm":
        from prefgen.models.vllm.engine import VllmVLM

        return VllmVLM.load(config, base_dir=base_dir)
    from prefgen.models.hf.vlm import VLM

    return VLM.load(config, base_dir=base_dir)
