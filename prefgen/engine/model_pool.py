"""The recipe's models as stages see them: loaded on first use, once per build, shared by every stage."""

from __future__ import annotations

from pathlib import Path

#: The module whose code serves each model a stage can declare: part of that stage's code for the cache key.
RUNTIME_MODULES = {"vlm": "prefgen.models.vlm", "clip": "prefgen.models.clip"}


class RecipeModels:
    """``.vlm`` and ``.clip`` of a recipe's ``models`` section; relative paths resolve from the recipe's folder."""

    def __init__(self, config, base_dir: Path):
        self._config, self._base_dir, self._loaded = config, base_dir, {}

    @property
    def vlm(self):
        if "vlm" not in self._loaded:
            from prefgen.models.vlm import VLM  # torch and transformers: only when a stage needs the model

            self._loaded["vlm"] = VLM.load(self._config.vlm, base_dir=self._base_dir)
        return self._loaded["vlm"]

    @property
    def clip(self):
        if "clip" not in self._loaded:
            from prefgen.models.clip import ClipScorer  # torch and open_clip: likewise

            self._loaded["clip"] = ClipScorer.load(self._config.clip, base_dir=self._base_dir)
        return self._loaded["clip"]
