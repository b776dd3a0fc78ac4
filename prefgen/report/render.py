"""Turning a report's context into one HTML file: jinja2 with autoescape on, data for the page's script embedded as
JSON that no text can break out of, and an atomic write."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from prefgen import __version__
from prefgen.core.fs import atomic_write_text


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("prefgen.report", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json_script"] = json_script
    env.filters["num"] = num_text
    env.globals["prefgen_version"] = __version__
    return env


def json_script(value: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` element. ``<``, ``>`` and ``&`` become ``\\u`` escapes (as
    Django's ``json_script`` does), so no string in the data (``</script>``, ``<!--``) can end the element early;
    ``JSON.parse`` reads the escapes back as the original characters."""
    text = json.dumps(clean(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def clean(value: Any) -> Any:
    """NaN and infinities (JSON has neither) become None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def num_text(value: Any, digits: int = 4) -> str:
    """A number as people read it in a table: 4 significant digits, '-' when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.{digits}g}"


def write_html(template: str, context: dict[str, Any], out: Path, script: str | None = None) -> Path:
    """Render ``template`` with ``context`` (and the page script named ``script``) into ``out``, written beside it
    first and renamed into place. The page's Content-Security-Policy lets no script run but that one (by its
    hash) and fetches nothing, so even a text that escaped escaping could not run or call home."""
    env = environment()
    extra: dict[str, Any] = {"script_policy": "'none'"}
    if script is not None:
        source = env.loader.get_source(env, script)[0]
        digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")
        extra = {"script": Markup(source), "script_policy": f"'sha256-{digest}'"}
    html = env.get_template(template).render(**context, **extra)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, html)
    return out
