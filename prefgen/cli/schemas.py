"""JSON Schemas generated from the typed models, so editors can validate recipes and other tools can read rows
and manifests. ``prefgen schema --out schemas/`` writes them; a test keeps the committed copies in sync."""

from __future__ import annotations

import json
from pathlib import Path

from prefgen.core.contract import Record
from prefgen.recipe import Recipe
from prefgen.store.manifest import Manifest

SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"


def schemas() -> dict[str, dict]:
    out = {}
    for name, model, title in (
        ("recipe", Recipe, "prefgen recipe"),
        ("record", Record, "prefgen output row (one preference pair)"),
        ("manifest", Manifest, "prefgen version manifest"),
    ):
        schema = model.model_json_schema()
        out[name] = {"$schema": SCHEMA_URL, **schema, "title": title}
    return out


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
