"""DuckDB over a store: a view per version, ``pairs`` for the latest, ``versions`` for the manifests, and
``rejects`` for the rows builds dropped (version, row_id, stage, reason, detail).

The connection is read-only by construction: only single SELECT statements run, and once the views exist DuckDB
may touch no file but the store's parquet files, so SQL can neither change the store nor read elsewhere.
Image bytes are left out of the views unless asked for, which keeps analytic queries fast.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from prefgen.core.errors import QueryError
from prefgen.store.folder import Store

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

_VERSION_COLUMNS = ("version", "rows", "parent", "created_at", "origin", "message", "recipe_fingerprint", "round")


def connect(store: Store, *, images: bool = False) -> "duckdb.DuckDBPyConnection":
    """An in-memory DuckDB connection with the store's views, locked against file access outside the store."""
    import duckdb

    con = duckdb.connect(":memory:")
    manifests = store.manifests()
    allowed: list[str] = []
    for manifest in manifests:
        files = [str(p.resolve()) for p in store.data_files(manifest.version)]
        allowed += files
        drop = "" if images or "images" not in manifest.columns else " EXCLUDE (images)"
        con.execute(f"CREATE VIEW {_quote(manifest.version)} AS SELECT *{drop} FROM read_parquet({_sql_list(files)})")
    if manifests:
        con.execute(f"CREATE VIEW pairs AS SELECT * FROM {_quote(manifests[-1].version)}")
    parts = [
        "SELECT NULL::VARCHAR AS version, NULL::VARCHAR AS row_id, NULL::VARCHAR AS stage, "
        "NULL::VARCHAR AS reason, NULL::VARCHAR AS detail WHERE false"
    ]
    for manifest in manifests:
        path = store.rejects_file(manifest.version)
        if path is not None:
            allowed.append(str(path.resolve()))
            parts.append(
                f"SELECT '{manifest.version}' AS version, row_id, stage, reason, detail "
                f"FROM read_parquet({_sql_list([str(path.resolve())])})"
            )
    con.execute("CREATE VIEW rejects AS " + " UNION ALL ".join(parts))
    # A plain table filled with parameters: registering an Arrow table would make duckdb import pandas (0.3 s).
    con.execute(
        "CREATE TABLE _versions (version VARCHAR, rows BIGINT, parent VARCHAR, created_at TIMESTAMPTZ, "
        "origin VARCHAR, message VARCHAR, recipe_fingerprint VARCHAR, round BIGINT)"
    )
    if manifests:
        con.executemany(
            "INSERT INTO _versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [[getattr(m, k) for k in _VERSION_COLUMNS] for m in manifests],
        )
    con.execute("CREATE VIEW versions AS SELECT * FROM _versions")
    con.execute(f"SET allowed_paths = {_sql_list(allowed)}")
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
    with _relation(store, sql, images) as relation:
        return relation.to_arrow_table()


def fetch_rows(store: Store, sql: str, *, images: bool = False) -> tuple[list[str], list[tuple]]:
    """Run one SELECT and return (column names, rows of Python values); skips Arrow, which keeps the CLI quick."""
    with _relation(store, sql, images) as relation:
        return list(relation.columns), relation.fetchall()


@contextmanager
def _relation(store: Store, sql: str, images: bool) -> Iterator["duckdb.DuckDBPyRelation"]:
    import duckdb

    check_select(sql)
    con = connect(store, images=images)
    try:
        yield con.sql(sql)
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {_first_line(exc)}") from None
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


def _sql_list(texts: list[str]) -> str:
    return "[" + ", ".join("'" + t.replace("'", "''") + "'" for t in texts) + "]"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
