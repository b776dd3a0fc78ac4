"""Human-readable descriptions of stages for `prefgen stages`, made from their declarations."""

from __future__ import annotations

import inspect
import sys

from prefgen.stages.base import StageParams


def stage_summary(cls: type[StageParams]) -> str:
    doc = inspect.getdoc(cls) or ""
    return f"{cls.stage_type():<18} {doc.splitlines()[0] if doc else ''}"


def describe_stage(cls: type[StageParams]) -> str:
    defaults = cls.model_construct()
    module_doc = inspect.getdoc(sys.modules[cls.__module__]) or ""
    lines = [cls.stage_type(), "", module_doc, ""]
    lines.append(f"reads:   {', '.join(_safe(defaults.input_columns)) or '-'}")
    lines.append(f"writes:  {', '.join(_safe(defaults.output_columns)) or '-'}")
    lines.append(f"models:  {', '.join(cls.models) or '-'}")
    lines += ["", "params:"]
    for name, field in cls.model_fields.items():
        if name == "type":
            continue
        default = (
            "required" if field.is_required() else f"default {_short(field.get_default(call_default_factory=True))}"
        )
        lines.append(f"  {name}: {field.description or ''} ({default})")
    lines += ["", "example (every param at its default; required ones to fill in):", f"  - type: {cls.stage_type()}"]
    for name, field in cls.model_fields.items():
        if name in _NOT_IN_EXAMPLE:
            continue
        value = f"<{name}>" if field.is_required() else _yaml(field.get_default(call_default_factory=True))
        lines.append(f"    {name}: {value}")
    return "\n".join(lines)


#: Params every stage has, which an example of one stage need not show.
_NOT_IN_EXAMPLE = ("type", "name", "resources")


def _yaml(value) -> str:
    """A default as it would be written in a recipe (one line; strings quoted when YAML needs it)."""
    import json

    import yaml

    value = _plain(value)
    if isinstance(value, str) and ("\n" in value or yaml.safe_load(value) != value):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a double-quoted YAML string
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True).strip()
    return text.removesuffix("\n...").strip()


def _plain(value):
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _safe(method) -> list[str]:
    try:
        return method()
    except Exception:  # params that need values (a column name) have no columns before they are given
        return ["<from params>"]


def _short(value) -> str:
    text = repr(value.model_dump() if hasattr(value, "model_dump") else value)
    if isinstance(value, list):
        text = repr([v.model_dump() if hasattr(v, "model_dump") else v for v in value])
    return text if isinstance(value, str) or len(text) <= 60 else text[:57] + "..."  # prompts in full
