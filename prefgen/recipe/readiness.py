"""Can a valid recipe run here, and will it make what its author expects? Checked without loading a model.

``machine_problems`` is what a build on this machine is certain to stop on: a source or model path that is not
there, a device torch cannot see, a Hub or open_clip model that is in no local cache while offline. ``prefgen
validate``, ``build --plan`` and the build itself (before its draft is opened) all ask it, so the three cannot
disagree. ``recipe_notes`` is what runs but surprises: a declared model no stage uses, pairs without scores.
"""

from __future__ import annotations

from pathlib import Path

from prefgen.core.config import normal_path
from prefgen.models.availability import clip_problems, vlm_problems
from prefgen.recipe.model import Recipe

#: A problem's location in the recipe (``("models", "vlm", "path")``) and its one-line message.
Located = tuple[tuple, str]


def used_models(recipe: Recipe) -> list[str]:
    """The roles (``vlm``, ``clip``) that some stage of the recipe uses, in that order."""
    return [name for name in ("vlm", "clip") if any(name in stage.models for stage in recipe.stages)]


def machine_problems(recipe: Recipe, base_dir: Path) -> list[Located]:
    """Everything that stops this recipe on this machine before its first row: the source, then each model used."""
    found = _source_problems(recipe, base_dir)
    checks = {"vlm": vlm_problems, "clip": clip_problems}
    for role in used_models(recipe):
        found += [(("models", role, key), msg) for key, msg in checks[role](getattr(recipe.models, role), base_dir)]
    if "vlm" in used_models(recipe):
        engine = recipe.models.vlm.engine
        for index, stage in enumerate(recipe.stages):
            problem = stage.engine_problem(engine) if "vlm" in stage.models else None
            if problem is not None:
                found.append((("stages", index, problem[0]), f"stage {stage.label!r}: {problem[1]}"))
    return found


def recipe_notes(recipe: Recipe) -> list[str]:
    """What runs but is likely not what was meant, one line each."""
    used = used_models(recipe)
    notes = [
        f"models.{role} is declared but no stage uses it (add a stage that does, e.g. clip_score, or remove it)"
        for role in ("vlm", "clip")
        if getattr(recipe.models, role) is not None and role not in used
    ]
    for stage in recipe.stages:
        if stage.stage_type() == "select_pairs" and not (stage.chosen_score or stage.rejected_score):
            notes.append(
                f"stage {stage.label!r} names no chosen_score or rejected_score: the pairs' scores and margin will "
                "be empty (NULL), so a margin threshold (`min_margin`, `WHERE margin > ...`) keeps nothing; to have "
                "them, score the candidates (e.g. two clip_score stages) and name their columns"
            )
    return notes


def _source_problems(recipe: Recipe, base_dir: Path) -> list[Located]:
    source = recipe.source
    if source.path is None:  # a Hub dataset: the datasets library says whether it can have it
        return []
    where = normal_path(source.path, base_dir)
    if source.type == "image_folder" and not where.is_dir():
        return [(("source", "path"), f"image folder {where} does not exist or is not a folder")]
    if source.type == "manifest" and not where.is_file():
        return [(("source", "path"), f"manifest {where} does not exist")]
    if source.type == "hf_dataset" and not where.exists():
        return [(("source", "path"), f"dataset {where} does not exist")]
    return []
