"""How a recipe names its models: a VLM (Hub id at a revision, or a local folder) and a CLIP. The runtime in this
package loads from these; the recipe embeds them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from prefgen.core.config import StrictModel


class VLMConfig(StrictModel):
    """The vision-language model that asks, answers and scores: a Hub id pinned to a revision, or a local path."""

    id: str | None = Field(None, description="Hub model id, e.g. `llava-hf/llava-1.5-7b-hf`.")
    path: str | None = Field(None, description="Local model folder (relative to the recipe file or absolute).")
    revision: str | None = Field(None, description="Commit sha or tag of the Hub model.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field("auto", description="Weights' dtype.")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto, cpu, mps, cuda or cuda:N.")
    trust_remote_code: bool = Field(False, description="Run code shipped with the model. Off unless you trust it.")

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
