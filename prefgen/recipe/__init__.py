"""Recipes: the YAML that says what a build reads, which stages it runs, with which models, and where it writes.

``load_recipe(path)`` returns a typed ``Recipe`` or raises a ``RecipeError``; ``check_recipe(path)`` returns every
problem at once, each located by its YAML path and line, which is what ``prefgen validate`` prints.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import Field, ValidationError, create_model, field_validator

from prefgen.core.config import StrictModel
from prefgen.core.contract import CONTRACT_COLUMNS
from prefgen.core.errors import PrefgenError, RecipeError
from prefgen.core.naming import check_version_name
from prefgen.models.config import ClipConfig, VLMConfig
from prefgen.recipe.catalogue import STAGES
from prefgen.recipe.sources import HFDatasetSource, ImageFolderSource, Limits, ManifestSource, Source, source_columns
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


# ---------------------------------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. "stages[2].type"
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path + ': ' if self.path else ''}{self.message}"


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


def apply_overrides(data: dict, overrides: tuple[str, ...]) -> list[Problem]:
    """Set values by dotted path, e.g. ``stages.select_pairs.chosen_score=answers_oracle`` or ``seed=3``.

    A stage is named by its index or its label (``name``, else ``type``); VALUE is read as YAML. Returns problems
    instead of raising, so they are reported with the recipe's own.
    """
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not sep or not parts:
            problems.append(Problem("--set", None, f"{item!r} is not KEY=VALUE"))
            continue
        try:
            value = yaml.safe_load(raw)
            target = data
            for part in parts[:-1]:
                target = _child(target, part, create=True)
            if isinstance(target, list):
                target[_index(target, parts[-1])] = value
            else:
                target[parts[-1]] = value
        except (yaml.YAMLError, KeyError, IndexError, TypeError, ValueError) as exc:
            problems.append(Problem("--set", None, f"cannot set {key}: {exc}"))
    return problems


def _child(node, part: str, create: bool):
    if isinstance(node, list):
        return node[_index(node, part)]
    if not isinstance(node, dict):
        raise TypeError(f"{part!r} is inside a value that is not a mapping")
    return node.setdefault(part, {}) if create else node[part]


def _index(items: list, part: str) -> int:
    if part.lstrip("-").isdigit():
        return int(part)
    labels = [
        i for i, item in enumerate(items) if isinstance(item, dict) and (item.get("name") or item.get("type")) == part
    ]
    if len(labels) != 1:
        raise KeyError(f"no single stage labelled {part!r}" if not labels else f"several stages are labelled {part!r}")
    return labels[0]


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

    problems = _duplicate_keys(root, ()) + apply_overrides(data, overrides)
    recipe = None
    try:
        recipe = recipe_model().model_validate(data)
    except ValidationError as exc:
        problems += [_problem_from_error(err, root) for err in exc.errors()]
    problems += _check_flow(data, root)
    problems.sort(key=lambda p: (p.line or 0, p.path))
    return (recipe if not problems else None), problems


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
        parent = _node_at(root, loc[:-1])
        hint = _close_key(loc[-1], parent, err)
        message += f" (did you mean {hint!r}?)" if hint else ""
    elif kind == "missing":
        message = f"missing required key {loc[-1]!r}"
    else:
        message = err["msg"].removeprefix("Value error, ")
    node = _node_at(root, loc, key=kind == "extra_forbidden")
    return Problem(_format_path(loc), node.start_mark.line + 1 if node is not None else None, message)


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
        line = _line(root, ["stages", i, "type"])
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
        key = _node_at(root, ["stages"], key=True)
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
    return source_columns(raw.get("question_column"), [str(c) for c in extras] if isinstance(extras, list) else ())


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


# ---------------------------------------------------------------------------------------------------- YAML nodes


def _node_at(root: yaml.Node, loc, key: bool = False) -> yaml.Node | None:
    """The YAML node at a location; with ``key`` the key node of the last step. Falls back to the deepest parent."""
    node = root
    for depth, part in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    node = k if (key and last) else v
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _line(root: yaml.Node, loc) -> int | None:
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def _duplicate_keys(node: yaml.Node, loc: tuple) -> list[Problem]:
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            if k.value in seen:
                problems.append(
                    Problem(
                        _format_path([*loc, k.value]),
                        k.start_mark.line + 1,
                        "key given twice; the later value would silently win",
                    )
                )
            seen.add(k.value)
            problems += _duplicate_keys(v, (*loc, k.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            problems += _duplicate_keys(v, (*loc, i))
    return problems


def _format_path(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
