"""`--set KEY=VALUE`: change a recipe's values by dotted path before it is validated."""

from __future__ import annotations

import yaml

from prefgen.recipe.yaml_nodes import Problem


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
