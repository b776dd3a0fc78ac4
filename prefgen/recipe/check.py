"""Checking a recipe: every problem at once, each located by its YAML path and line (what `prefgen validate`
prints), or the typed ``Recipe`` when there are none."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from prefgen.core.config import StrictModel
from prefgen.core.contract import CONTRACT_COLUMNS
from prefgen.core.errors import RecipeError
from prefgen.recipe.catalogue import STAGES
from prefgen.recipe.model import Recipe, recipe_model
from prefgen.recipe.overrides import apply_overrides
from prefgen.recipe.sources import HFDatasetSource, ImageFolderSource, ManifestSource, source_columns
from prefgen.recipe.yaml_nodes import Problem, duplicate_keys, format_path, line_of, node_at
from prefgen.stages.base import StageParams


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read and validate a recipe file, with ``overrides`` (``KEY=VALUE``, see ``apply_overrides``) applied;
    raise RecipeError listing every problem."""
    recipe, problems = _check(Path(path), tuple(overrides))
    if problems:
        raise RecipeError(path, [str(p) for p in problems])
    return recipe


def check_recipe(path: str | Path) -> list[Problem]:
    """Every problem in a recipe file, in file order; empty when it is valid."""
    return _check(Path(path))[1]


def check_here(path: str | Path) -> list[Problem]:
    """``check_recipe``'s problems, or when there are none, what stops the recipe on this machine (``readiness``):
    missing source or model paths, devices torch cannot see, models in no local cache while offline."""
    from prefgen.recipe.readiness import machine_problems

    path = Path(path)
    recipe, problems = _check(path)
    if problems:
        return problems
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    found = machine_problems(recipe, path.parent)
    return [Problem(format_path(list(loc)), line_of(root, list(loc)), message) for loc, message in found]


def _check(path: Path, overrides: tuple[str, ...] = ()) -> tuple[Recipe | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem("", None, f"cannot read recipe: {exc.strerror or exc}")]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [Problem("", mark.line + 1 if mark else None, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
    if not isinstance(data, dict):
        return None, [Problem("", 1, "a recipe must be a mapping with name, source, stages and output")]

    problems = duplicate_keys(root, ()) + apply_overrides(data, overrides)
    recipe = None
    try:
        recipe = recipe_model().model_validate(data)
    except ValidationError as exc:
        problems += [_problem_from_error(err, root) for err in exc.errors()]
    problems = _blame_overrides(problems + _check_flow(data, root), overrides)
    problems.sort(key=lambda p: (p.line or 0, p.path))
    return (recipe if not problems else None), problems


def _blame_overrides(problems: list[Problem], overrides: tuple[str, ...]) -> list[Problem]:
    """A problem with a key that ``--set`` wrote belongs to the command line, not to the recipe line nearest to
    where the key would be (``stages[8].chosen_scor`` has no line of its own)."""
    by_key = {item.partition("=")[0].strip().rsplit(".", 1)[-1]: item for item in overrides}
    return [
        Problem(f"--set {by_key[key]}", None, p.message) if (key := p.path.rsplit(".", 1)[-1]) in by_key else p
        for p in problems
    ]


def _problem_from_error(err: dict[str, Any], root: yaml.Node) -> Problem:
    raw = err["loc"]
    # Discriminated unions put the tag in the location (stages.2.answer.n); users never wrote it.
    tags = _OTHER_TAGS | set(STAGES)
    loc = [
        part
        for i, part in enumerate(raw)
        if not (part in tags and i > 0 and (isinstance(raw[i - 1], int) or raw[i - 1] == "source"))
    ]
    kind = err["type"]
    if kind == "union_tag_invalid":
        tag = err["ctx"]["tag"]
        choices = sorted(STAGES) if loc and loc[0] == "stages" else _source_types()
        hint = difflib.get_close_matches(tag, choices, n=1)
        what = "stage" if loc and loc[0] == "stages" else "source"
        message = f"unknown {what} type {tag!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        message += f"; known: {', '.join(choices)}"
        loc = [*loc, "type"]
    elif kind == "union_tag_not_found":
        message = "missing `type`"
    elif kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        parent = node_at(root, loc[:-1])
        hint = _close_key(loc[-1], parent, err)
        message += f" (did you mean {hint!r}?)" if hint else ""
    elif kind == "missing":
        message = f"missing required key {loc[-1]!r}"
    else:
        message = err["msg"].removeprefix("Value error, ")
    node = node_at(root, loc, key=kind == "extra_forbidden")
    return Problem(format_path(loc), node.start_mark.line + 1 if node is not None else None, message)


_OTHER_TAGS = frozenset(
    {
        "image_folder",
        "hf_dataset",
        "manifest",
        "diffusion_noise",
        "gaussian_noise",
        "gaussian_blur",
        "jpeg",
        "color_jitter",
        "random_resized_crop",
    }
)


def _source_types() -> list[str]:
    return ["hf_dataset", "image_folder", "manifest"]


def _close_key(key: str, parent: yaml.Node | None, err: dict[str, Any]) -> str | None:
    """Suggest the allowed key nearest to a misspelt one, using the model that rejected it."""
    model = _model_for(err["loc"][:-1])
    if model is None:
        return None
    allowed = [k for k in model.model_fields if k != "type"]
    hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.7)
    return hint[0] if hint else None


def _model_for(loc) -> type | None:
    """The pydantic model at a location of the recipe, following stage and source tags."""
    model: Any = Recipe
    for part in loc:
        if isinstance(part, int):
            continue
        if part in STAGES:
            model = STAGES[part]
            continue
        if part in ("image_folder", "hf_dataset", "manifest"):
            model = {"image_folder": ImageFolderSource, "hf_dataset": HFDatasetSource, "manifest": ManifestSource}[
                part
            ]
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, StrictModel):
                model = candidate
                break
        else:
            model = annotation
    return model if isinstance(model, type) else None


def _check_flow(data: dict, root: yaml.Node) -> list[Problem]:
    """Columns and models across stages: each stage must read only what the source or an earlier stage writes."""
    stages = data.get("stages")
    if not isinstance(stages, list):
        return []
    available = set(_source_columns(data.get("source")))
    models = data.get("models") if isinstance(data.get("models"), dict) else {}
    written_by: dict[str, int] = {}
    for i, raw in enumerate(stages):
        if isinstance(raw, dict) and raw.get("type") in STAGES:
            for column in _stage_columns(raw)[1]:
                written_by.setdefault(column, i)
    problems, labels = [], {}
    for i, raw in enumerate(stages):
        if not isinstance(raw, dict) or raw.get("type") not in STAGES:
            continue
        cls = STAGES[raw["type"]]
        reads, writes = _stage_columns(raw)
        line = line_of(root, ["stages", i, "type"])
        for column in reads:
            if column not in available:
                later = written_by.get(column)
                hint = (
                    f"; stages[{later}] writes it, move that stage earlier" if later is not None and later > i else ""
                )
                problems.append(
                    Problem(
                        f"stages[{i}]",
                        line,
                        f"stage {raw['type']!r} reads column {column!r}, "
                        f"which neither the source nor an earlier stage writes{hint}",
                    )
                )
        for need in cls.models:
            if not models.get(need):
                problems.append(Problem(f"stages[{i}]", line, f"stage {raw['type']!r} needs `models.{need}`"))
        label = raw.get("name") or raw["type"]
        if label in labels:
            problems.append(
                Problem(
                    f"stages[{i}]",
                    line,
                    f"stage label {label!r} is also used by stages[{labels[label]}]"
                    "; give one of them a distinct `name`",
                )
            )
        labels.setdefault(label, i)
        available.update(writes)
    missing = [c for c in CONTRACT_COLUMNS if c not in available]
    if stages and all(isinstance(s, dict) and s.get("type") in STAGES for s in stages) and missing:
        key = node_at(root, ["stages"], key=True)
        problems.append(
            Problem(
                "stages",
                key.start_mark.line + 1,
                f"no stage writes the pair columns ({', '.join(missing)}); end the recipe with a `select_pairs` stage",
            )
        )
    return problems


def _source_columns(raw: Any) -> list[str]:
    """The source's columns, from its raw (possibly invalid) YAML, so column checks run beside schema errors."""
    raw = raw if isinstance(raw, dict) else {}
    extras = raw.get("extra_columns")
    question = raw.get("question_column") or raw.get("question")
    return source_columns(question, [str(c) for c in extras] if isinstance(extras, list) else ())


def _stage_columns(raw: dict) -> tuple[list[str], list[str]]:
    """A stage's (reads, writes); from its params when they validate, from its class declarations otherwise."""
    cls: type[StageParams] = STAGES[raw["type"]]
    try:
        params = cls.model_validate(raw)
    except ValidationError:
        # Invalid params are reported elsewhere; guess the columns from what was written to avoid knock-on errors.
        params = cls.model_construct(**{k: v for k, v in raw.items() if k in cls.model_fields})
        try:
            return params.input_columns(), params.output_columns()
        except Exception:
            return list(cls.reads), list(cls.writes)
    return params.input_columns(), params.output_columns()
