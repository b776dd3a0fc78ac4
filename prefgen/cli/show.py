"""``prefgen show``: a version's manifest summary and a sample of its pairs as text (never image bytes)."""

from __future__ import annotations

import click

from prefgen.cli.output import render_table
from prefgen.store.folder import Store
from prefgen.store.query import fetch_rows

_SAMPLE_COLUMNS = (
    ("id", "id"),
    ("prompt[-1].content", "question"),
    ("chosen[-1].content", "chosen"),
    ("rejected[-1].content", "rejected"),
    ("chosen_score", "chosen_score"),
    ("rejected_score", "rejected_score"),
    ("margin", "margin"),
    ("method", "method"),
)


def render_version(store: Store, version: str | None, limit: int) -> None:
    manifest = store.manifest(version)
    click.echo(
        f"{store.root}@{manifest.version}: {manifest.rows} rows, parent {manifest.parent or '-'}, "
        f"{manifest.origin}, created {manifest.created_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    if manifest.message:
        click.echo(f"message: {manifest.message}")
    if manifest.drops:
        click.echo("dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(manifest.drops.items())))
    select = ", ".join(
        f"{expr} AS {alias}" for expr, alias in _SAMPLE_COLUMNS if expr.split("[")[0] in manifest.columns
    )
    columns, rows = fetch_rows(store, f'SELECT {select} FROM "{manifest.version}" LIMIT {int(limit)}')
    click.echo(render_table(columns, rows), nl=False)


def render_pairs(rows: list[dict]) -> str:
    """A table of pairs held in memory (``build --preview``), in the same shape as ``show``."""

    def text(messages) -> str:
        return messages[-1]["content"] if messages else ""

    columns = ["id", "question", "chosen", "rejected", "margin"]
    table = [
        (
            r.get("id", r.get("row_id")),
            text(r.get("prompt")),
            text(r.get("chosen")),
            text(r.get("rejected")),
            r.get("margin"),
        )
        for r in rows
    ]
    return render_table(columns, table)
