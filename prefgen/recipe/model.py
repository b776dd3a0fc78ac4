"""The recipe as typed models: models, output, stages (one entry per catalogue stage, told apart by `type`)."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Annotated, Union

from pydantic import Field, create_model, field_validator

from prefgen.core.config import StrictModel
from prefgen.core.errors import PrefgenError
from prefgen.core.naming import check_version_name
from prefgen.models.config import ClipConfig, VLMConfig
from prefgen.recipe.catalogue import STAGES
from prefgen.recipe.sources import Limits, Source
from prefgen.recipe.training import TrainConfig
from prefgen.stages.base import StageParams

# ---------------------------------------------------------------------------------------------------- models


class Models(StrictModel):
    vlm: VLMConfig | None = Field(None, description="Needed by stages that generate or score text.")
    clip: ClipConfig | None = Field(None, description="Needed by stages that score image relevance.")


# ---------------------------------------------------------------------------------------------------- output


class PushTarget(StrictModel):
    repo: str = Field(..., pattern=r"^[\w.-]+/[\w.-]+$", description="Hub dataset repo id, `user/name`.")
    private: bool = Field(True, description="Create the repo as private if it does not exist.")


class Output(StrictModel):
    store: str = Field(..., description="Store folder (relative to the recipe file or absolute).")
    version: str | None = Field(None, description="Version name; defaults to the next `vN`.")
    message: str = Field("", description="Short description recorded in the manifest.")
    push: PushTarget | None = Field(None, description="Push to the Hub after publishing.")
    license: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9.+-]*$",
        description="The dataset's license as the Hub names it (cc-by-4.0, apache-2.0, other ...), written to the "
        "dataset card. It follows from your images' and your models' terms; unset, the card says `other`.",
    )

    @field_validator("version")
    @classmethod
    def _valid_version(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_version_name(value)
            except PrefgenError as exc:
                raise ValueError(str(exc)) from None
        return value


StageEntry = Annotated[Union[tuple(STAGES.values())], Field(discriminator="type")]


class Recipe(StrictModel):
    """A prefgen recipe: source images, models, an ordered list of stages, and the output store."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Recipe name.")
    description: str = Field("", description="What this recipe does and what it reproduces.")
    seed: int = Field(0, ge=0, description="Seed for sampling, corruption and generation.")
    source: Source
    models: Models = Field(default_factory=Models)
    stages: list[StageEntry] = Field(..., min_length=1, description="Stages, run in order.")
    output: Output
    limits: Limits = Field(default_factory=Limits)
    train: TrainConfig | None = Field(None, description="How `prefgen train --rounds` trains on this recipe's pairs.")

    def fingerprint(self) -> str:
        """Hash of everything that determines the rows (not where they are written)."""
        payload = self.model_dump(
            mode="json", exclude={"output": True, "description": True, "stages": {"__all__": {"resources"}}}
        )
        payload["source"] = self.source.identity()
        for dumped, stage in zip(payload["stages"], self.stages):
            for key in stage.later_keys:  # keys added after stores were built count once they are set
                if getattr(stage, key) == type(stage).model_fields[key].default:
                    dumped.pop(key, None)
        vlm = (payload.get("models") or {}).get("vlm")
        if vlm:  # how vLLM starts never changes rows; the engine, added later, counts once it is not the default
            vlm.pop("vllm", None)
            if vlm.get("engine") == "hf":
                vlm.pop("engine")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


_BUILTIN_STAGES = tuple(STAGES.values())


def recipe_model() -> type[Recipe]:
    """The Recipe model for the stages registered now (``STAGES`` may be extended, e.g. by tests or plugins)."""
    return _recipe_model(tuple(STAGES.values()))


@functools.lru_cache(maxsize=8)
def _recipe_model(stage_types: tuple[type[StageParams], ...]) -> type[Recipe]:
    if stage_types == _BUILTIN_STAGES:
        return Recipe
    entry = Annotated[Union[stage_types], Field(discriminator="type")]
    return create_model("Recipe", __base__=Recipe, stages=(list[entry], Field(..., min_length=1)))
