"""DuckDB over a store: a view per version, ``pairs`` for the latest, and ``versions`` for the manifests.

The connection is read-only by construction: only single SELECT statements run, and once the views exist DuckDB
may touch no file but the store's parquet files, so SQL can neither change the store nor read elsewhere.
Image bytes are left out of the views unless asked for, which keeps analytic queries fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgen.errors import QueryError
from prefgen.store import Store

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

_VERSION_COLUMNS = ("version", "rows", "parent", "created_at", "origin", "message", "recipe_fingerprint", "round")


def connect(store: Store, *, images: bool = False) -> "duckdb.DuckDBPyConnection":
    """An in-memory DuckDB connection with the store's views, locked against file access outside the store."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect(":memory:")
    manifests = store.manifests()
    allowed: list[str] = []
    for manifest in manifests:
        files = [str(p.resolve()) for p in store.data_files(manifest.version)]
        allowed += files
        drop = "" if images or "images" not in manifest.columns else " EXCLUDE (images)"
        con.execute(f"CREATE VIEW {_quote(manifest.version)} AS SELECT *{drop} FROM read_parquet({files!r})")
    if manifests:
        con.execute(f"CREATE VIEW pairs AS SELECT * FROM {_quote(manifests[-1].version)}")
    table = pa.Table.from_pylist(
        [{k: getattr(m, k) for k in _VERSION_COLUMNS} for m in manifests],
        schema=pa.schema([("version", pa.string()), ("rows", pa.int64()), ("parent", pa.string()),
                          ("created_at", pa.timestamp("us", tz="UTC")), ("origin", pa.string()),
                          ("message", pa.string()), ("recipe_fingerprint", pa.string()), ("round", pa.int64())]),
    )
    con.register("_versions", table)
    con.execute("CREATE VIEW versions AS SELECT * FROM _versions")
    con.execute(f"SET allowed_paths = {allowed!r}")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET lock_configuration = true")
    return con


def check_select(sql: str) -> str:
    """Return ``sql`` if it is exactly one SELECT statement, else raise a QueryError saying what it is."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"bad SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryError(f"give exactly one SQL statement (got {len(statements)})")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryError(f"the store is read-only: only SELECT queries run here (got {kind.name})")
    return sql


def run_query(store: Store, sql: str, *, images: bool = False) -> "pa.Table":
    """Run one SELECT over the store's views and return the result as an Arrow table."""
    check_select(sql)
    con = connect(store, images=images)
    try:
        return con.sql(sql).to_arrow_table()
    except Exception as exc:  # duckdb raises many error classes; all mean the SQL failed
        import duckdb

        if isinstance(exc, duckdb.Error):
            raise QueryError(f"query failed: {_first_line(exc)}") from None
        raise
    finally:
        con.close()


def referenced_versions(store: Store, sql: str) -> list[str]:
    """Versions a query reads, through their own views or ``pairs`` (the latest), oldest first."""
    import duckdb

    try:
        names = duckdb.get_table_names(sql)  # parses only; the connection's own method trips over the views
    except duckdb.Error as exc:
        raise QueryError(f"bad SQL: {_first_line(exc)}") from None
    versions = store.versions()
    found = [v for v in versions if v in names]
    if "pairs" in names and versions and versions[-1] not in found:
        found.append(versions[-1])
    return found


def parse_ref(ref: str) -> tuple[Store, str | None]:
    """``STORE`` or ``STORE@VERSION`` → (store, version or None). A path that exists as written wins over a split."""
    from pathlib import Path

    if "@" in ref and not Path(ref).exists():
        root, version = ref.rsplit("@", 1)
        store = Store(root)
        store.manifest(version)  # unknown or invalid version: clear error now
        return store, version
    return Store(ref), None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

