"""What a build would do, worked out without running a stage: the validated recipe, the source images found, the
models and whether they are available here, each stage's columns, and the version it would publish."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prefgen.core.config import normal_path, resolve_path
from prefgen.core.errors import PrefgenError, StoreError
from prefgen.recipe import Recipe, load_recipe
from prefgen.recipe.readiness import machine_problems, recipe_notes, used_models
from prefgen.recipe.yaml_nodes import format_path


@dataclass
class Plan:
    recipe: Recipe
    recipe_path: Path
    source_lines: list[str] = field(default_factory=list)
    model_lines: list[str] = field(default_factory=list)
    stage_lines: list[str] = field(default_factory=list)
    output_lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what stops the build here: `build --plan` then exits 1
    notes: list[str] = field(default_factory=list)  # what runs but is likely not what was meant

    def render(self) -> str:
        r = self.recipe
        parts = [f"recipe   {r.name} ({self.recipe_path}), seed {r.seed}, fingerprint {r.fingerprint()}", "source"]
        parts += [f"  {line}" for line in self.source_lines]
        parts += ["models"] + [f"  {line}" for line in self.model_lines or ["(none)"]]
        parts += ["stages"] + [f"  {line}" for line in self.stage_lines]
        parts += ["output"] + [f"  {line}" for line in self.output_lines]
        parts += [f"note: {line}" for line in self.notes]
        parts += [f"MISSING: {line}" for line in self.problems]
        if self.problems:
            parts.append(f"the build would stop: {len(self.problems)} problem(s) above")
        return "\n".join(parts)


def make_plan(recipe_path: Path, overrides: tuple[str, ...] = ()) -> Plan:
    recipe = load_recipe(recipe_path, overrides)
    base = recipe_path.parent
    plan = Plan(recipe, recipe_path)
    plan.source_lines = _describe_source(recipe, base)
    plan.model_lines = _describe_models(recipe, base)
    for i, stage in enumerate(recipe.stages):
        plan.stage_lines.append(
            f"{i + 1}. {stage.label:<16} reads {', '.join(stage.input_columns())} -> writes "
            f"{', '.join(stage.output_columns())}"
        )
    plan.output_lines = _describe_output(recipe, base)
    plan.problems = [f"{format_path(list(loc))}: {message}" for loc, message in machine_problems(recipe, base)]
    plan.notes = recipe_notes(recipe)
    return plan


def _shown(path: str, base: Path) -> Path:
    """A recipe path as the build resolves it, written without ``..`` for reading (``recipes/../out`` is ``out``)."""
    return normal_path(path, base)


def _describe_source(recipe: Recipe, base: Path) -> list[str]:
    source, limit = recipe.source, recipe.limits.max_images
    if source.type == "image_folder":
        lines = [_counted(f"image folder {_shown(source.path, base)}", "image file(s)", recipe, base)]
    elif source.type == "manifest":
        lines = [_counted(f"manifest {_shown(source.path, base)}", "row(s)", recipe, base)]
    else:  # opening a dataset may download it or convert it to arrow: the plan only says where it is
        where = _shown(source.path, base) if source.path else f"{source.id}@{source.revision}"
        missing = " (MISSING)" if source.path and not where.exists() else ""
        lines = [f"dataset {where}{missing}, split {source.split}, image column {source.image_column!r}"]
    if limit:
        lines.append(f"limit {limit} image(s), {recipe.limits.sampling} (seed {recipe.seed})")
    return lines


def _counted(what: str, unit: str, recipe: Recipe, base: Path) -> str:
    """The number of items the build's own listing finds, so that the plan and the build cannot disagree."""
    from prefgen.engine.sources import reader as sources

    if not resolve_path(recipe.source.path, base).exists():
        return f"{what}: MISSING"
    try:
        return f"{what}: {sources.count_items(recipe.source, base)} {unit}"
    except PrefgenError as exc:
        return f"{what}: ERROR ({exc})"


def _describe_models(recipe: Recipe, base: Path) -> list[str]:
    lines = []
    vlm, clip = recipe.models.vlm, recipe.models.clip
    used = used_models(recipe)
    if vlm:
        if vlm.path:
            folder = _shown(vlm.path, base)
            state = "found" if (folder / "config.json").is_file() else "MISSING"
            lines.append(f"vlm  {folder} ({state}), dtype {vlm.dtype}, device {vlm.device}, engine {vlm.engine}")
        else:
            lines.append(
                f"vlm  {vlm.id}@{vlm.revision or 'main'} ({_hub_cache_state(vlm.id, vlm.revision)}), "
                f"dtype {vlm.dtype}, device {vlm.device}, engine {vlm.engine}"
            )
    if clip:
        if clip.path:
            folder = _shown(clip.path, base)
            lines.append(f"clip {clip.model} from {folder} ({'found' if folder.exists() else 'MISSING'})")
        else:
            lines.append(f"clip {clip.model} pretrained {clip.pretrained!r}, device {clip.device}")
    return [line + ("" if line.split()[0] in used else ", used by no stage") for line in lines]


def _hub_cache_state(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return "in the local Hub cache" if isinstance(hit, str) else "not in the local Hub cache"


def _describe_output(recipe: Recipe, base: Path) -> list[str]:
    from prefgen.store.folder import Store

    root = _shown(recipe.output.store, base)
    try:
        store = Store(root)
        version = recipe.output.version or store.next_version_name()
        state = f"existing store, latest {store.latest() or '-'}"
    except StoreError:
        version, state = recipe.output.version or "v1", "new store"
    lines = [f"store {root} ({state}), would publish {version}"]
    if recipe.output.push:
        lines.append(f"push to {recipe.output.push.repo} (private: {recipe.output.push.private})")
    return lines
