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
    lines += ["", "example:", f"  - type: {cls.stage_type()}"]
    for name, field in cls.model_fields.items():
        if field.is_required() and name != "type":
            lines.append(f"    {name}: <{name}>")
    return "\n".join(lines)


def _safe(method) -> list[str]:
    try:
        return method()
    except Exception:  # params that need values (a column name) have no columns before they are given
        return ["<from params>"]


def _short(value) -> str:
    text = repr(value.model_dump() if hasattr(value, "model_dump") else value)
    if isinstance(value, list):
        text = repr([v.model_dump() if hasattr(v, "model_dump") else v for v in value])
    return text if len(text) <= 60 else text[:57] + "..."
