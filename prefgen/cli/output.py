"""Writing query results: a terminal table, CSV or JSON from Python rows, or parquet from Arrow; stdout or a file."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import sys
import uuid
from pathlib import Path
from typing import Any, Sequence

import click

CELL_CHARS = 80  # longer text is cut in terminal tables; use csv/json for whole values


def write_rows(columns: Sequence[str], rows: Sequence[tuple], fmt: str, output: Path | None) -> None:
    """Write rows as ``table``, ``csv``, ``json`` (a list of objects) or ``markdown`` (a pipe table)."""
    if fmt == "table":
        text = render_table(columns, rows)
    elif fmt == "markdown":
        text = _markdown(columns, rows)
    elif fmt == "csv":
        text = _csv(columns, rows)
    elif fmt == "json":
        text = (
            json.dumps([dict(zip(columns, row)) for row in rows], default=_json_default, ensure_ascii=False, indent=1)
            + "\n"
        )
    else:
        raise ValueError(f"not a row format: {fmt}")
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _markdown(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    def cell(value) -> str:
        return "-" if value is None else _cell(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]) + "\n"


def print_columns(header: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Plain aligned columns on stdout, for small listings (versions, cache entries, rounds)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def render_table(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    from rich.console import Console
    from rich.table import Table

    view = Table(header_style="bold")
    for name in columns:
        view.add_column(name, overflow="fold")
    for row in rows:
        view.add_row(*(_cell(v) for v in row))
    console = Console(width=200, record=True, file=_Null(), force_terminal=False)
    console.print(view)
    console.print(f"{len(rows)} row(s)")
    return console.export_text()


def _cell(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict) and "content" in value[0]:
        value = " | ".join(str(m.get("content")) for m in value)  # a message list reads best as its text
    elif isinstance(value, (bytes, list, dict)):
        value = json.dumps(value, default=_json_default, ensure_ascii=False)
    elif isinstance(value, float):
        value = f"{value:.4g}"  # a table is read by people; --format json / csv keep every digit
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _csv(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                json.dumps(v, default=_json_default, ensure_ascii=False)
                if isinstance(v, (list, dict))
                else v
                if isinstance(v, (str, int, float, type(None)))
                else _json_default(v)
                for v in row
            ]
        )
    return out.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def echo_metrics(title: str, values: dict) -> None:
    """One line of named numbers under a title, floats to three places."""
    if values:
        shown = "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        click.echo(f"{title:<15} {shown}")
