"""Writing query results: a terminal table, CSV, JSON or parquet, to stdout or a file."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefgen.errors import PrefgenError

if TYPE_CHECKING:
    import pyarrow as pa

CELL_CHARS = 80  # longer text is cut in terminal tables; use csv/json for whole values


def write_table(table: "pa.Table", fmt: str, output: Path | None) -> None:
    if fmt == "parquet":
        if output is None:
            raise PrefgenError("--format parquet needs -o FILE")
        import pyarrow.parquet as pq

        pq.write_table(table, output)
        return
    if fmt == "table":
        text = render_table(table)
    elif fmt == "csv":
        text = _csv(table)
    else:
        text = json.dumps(table.to_pylist(), default=_json_default, ensure_ascii=False, indent=1) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def render_table(table: "pa.Table") -> str:
    from rich.console import Console
    from rich.table import Table

    view = Table(show_lines=False, header_style="bold")
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    for row in table.to_pylist():
        view.add_row(*(_cell(v) for v in row.values()))
    console = Console(width=200, record=True, file=_Null(), force_terminal=False)
    console.print(view)
    console.print(f"{table.num_rows} row(s)")
    return console.export_text()


def _cell(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict) and "content" in value[0]:
        value = " | ".join(str(m.get("content")) for m in value)  # a message list reads best as its text
    text = "" if value is None else str(_json_default(value) if isinstance(value, bytes) else value)
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _csv(table: "pa.Table") -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow(
            [json.dumps(v, default=_json_default, ensure_ascii=False) if isinstance(v, (list, dict)) else
             _json_default(v) if isinstance(v, (bytes, dt.datetime, dt.date)) else v for v in row.values()]
        )
    return out.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass
