"""DuckDB over a store: a view per version, ``pairs`` for the latest, ``all_pairs`` for every version's rows (with a
``version`` column), ``versions`` for the manifests, and ``rejects`` for the rows builds dropped (version, row_id,
stage, reason, detail).

The connection is read-only by construction: only single SELECT statements run, and once the views exist DuckDB
may touch no file but the store's parquet files, so SQL can neither change the store nor read elsewhere.
Image bytes are left out of the views unless asked for, which keeps analytic queries fast.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from prefgen.core.errors import QueryError
from prefgen.core.refs import split_store_ref
from prefgen.store.folder import Store
from prefgen.store.integrity import Problem, damaged, rejects_problem
from prefgen.store.manifest import Manifest

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

_VERSION_COLUMNS = ("version", "rows", "parent", "created_at", "origin", "message", "recipe_fingerprint", "round")


def connect(store: Store, *, images: bool = False, sql: str | None = None) -> "duckdb.DuckDBPyConnection":
    """An in-memory DuckDB connection with the store's views, locked against file access outside the store.

    The versions ``sql`` reads (every version when it is None) must pass the cheap integrity checks, else the one
    line naming the damaged file is raised; a damaged version the query does not read simply gets no view, so one
    broken version never keeps the others from being queried.
    """
    import duckdb

    con = duckdb.connect(":memory:")
    manifests = store.manifests()
    names = _table_names(sql) if sql is not None else None
    needed = _needed_versions(names, [m.version for m in manifests])
    readable = [m for m in manifests if _readable(store, m, needed)]
    allowed: list[str] = []
    for manifest in readable:
        files = [str((store.root / "data" / manifest.version / f.name).resolve()) for f in manifest.files]
        allowed += files
        drop = "" if images or "images" not in manifest.columns else " EXCLUDE (images)"
        con.execute(f"CREATE VIEW {_quote(manifest.version)} AS SELECT *{drop} FROM read_parquet({_sql_list(files)})")
    if manifests and readable and readable[-1] is manifests[-1]:
        con.execute(f"CREATE VIEW pairs AS SELECT * FROM {_quote(manifests[-1].version)}")
    if manifests and len(readable) == len(manifests):
        _all_pairs(con, manifests, required=names is None or "all_pairs" in names)
    allowed += _rejects_view(con, store, manifests, required=names is None or "rejects" in names)
    _versions_table(con, manifests)
    con.execute(f"SET allowed_paths = {_sql_list(allowed)}")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET lock_configuration = true")
    return con


def _needed_versions(names: set[str] | None, versions: list[str]) -> set[str]:
    """Versions whose rows the query reads: through their own views, ``pairs`` (the latest) or ``all_pairs``."""
    if names is None or "all_pairs" in names:
        return set(versions)
    needed = {v for v in versions if v in names}
    if "pairs" in names and versions:
        needed.add(versions[-1])
    return needed


def _readable(store: Store, manifest: Manifest, needed: set[str]) -> bool:
    found = store.damage(manifest)
    if found is not None and manifest.version in needed:
        raise found
    return found is None


def _all_pairs(con: "duckdb.DuckDBPyConnection", manifests: list[Manifest], required: bool) -> None:
    """``all_pairs``: every version's rows with a ``version`` column first; columns a version lacks are NULL."""
    import duckdb

    parts = []
    for m in manifests:
        own = " EXCLUDE (version)" if "version" in m.columns else ""
        parts.append(f"SELECT '{_literal(m.version)}' AS version, *{own} FROM {_quote(m.version)}")
    try:
        con.execute("CREATE VIEW all_pairs AS " + " UNION ALL BY NAME ".join(parts))
    except duckdb.Error as exc:
        if required:
            raise QueryError(f"all_pairs cannot put the versions together: {_message(exc)}") from None


def _rejects_view(
    con: "duckdb.DuckDBPyConnection", store: Store, manifests: list[Manifest], required: bool
) -> list[str]:
    """The ``rejects`` view over every version's rejects file; returns the files it reads."""
    parts = [
        "SELECT NULL::VARCHAR AS version, NULL::VARCHAR AS row_id, NULL::VARCHAR AS stage, "
        "NULL::VARCHAR AS reason, NULL::VARCHAR AS detail WHERE false"
    ]
    files = []
    for manifest in manifests:
        path = store.root / "rejects" / f"{manifest.version}.parquet"
        what = rejects_problem(path, manifest.rejects, full=False)
        if what and required:
            raise damaged(store.root, manifest.version, Problem(f"rejects/{manifest.version}.parquet", what))
        if what or not path.is_file():
            continue
        files.append(str(path.resolve()))
        parts.append(
            f"SELECT '{_literal(manifest.version)}' AS version, row_id, stage, reason, detail "
            f"FROM read_parquet({_sql_list([files[-1]])})"
        )
    con.execute("CREATE VIEW rejects AS " + " UNION ALL ".join(parts))
    return files


def _versions_table(con: "duckdb.DuckDBPyConnection", manifests: list[Manifest]) -> None:
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


def check_select(sql: str) -> str:
    """Return ``sql`` if it is exactly one SELECT statement, else raise a QueryError saying what it is."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"bad SQL: {_message(exc)}") from None
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
    con = connect(store, images=images, sql=sql)
    try:
        yield con.sql(sql)
    except duckdb.Error as exc:
        raise explain(store, sql, exc) from None
    finally:
        con.close()


def explain(store: Store, sql: str, exc: Exception) -> Exception:
    """The error to show for a failed query: a damaged file the query read when a full check finds one (the cheap
    checks passed, so only the hash can tell), else DuckDB's own message with its hints and position marker.
    Errors found before any row is read (syntax, names, types) are the query's own and cost no hashing; a damaged
    page can surface as almost any other error ("Snappy decompression failure", "don't know what type")."""
    import duckdb

    planning = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException, duckdb.InvalidTypeException)
    if not isinstance(exc, planning):
        versions = store.versions()
        for version in sorted(_needed_versions(_table_names(sql), versions), key=versions.index):
            found = store.damage(version, full=True)
            if found is not None:
                return found
    return QueryError(f"query failed: {_message(exc)}")


def referenced_versions(store: Store, sql: str) -> list[str]:
    """Versions a query reads, through their own views, ``pairs`` (the latest) or ``all_pairs``, oldest first."""
    versions = store.versions()
    needed = _needed_versions(_table_names(sql), versions)
    return [v for v in versions if v in needed]


def _table_names(sql: str) -> set[str]:
    import duckdb

    try:
        return set(duckdb.get_table_names(sql))  # parses only; the connection's own method trips over the views
    except duckdb.Error as exc:
        raise QueryError(f"bad SQL: {_message(exc)}") from None


def parse_ref(ref: str) -> tuple[Store, str | None]:
    """``STORE`` or ``STORE@VERSION`` (core.refs' grammar) → (store, version or None), the version checked to exist."""
    location, version = split_store_ref(ref)
    store = Store(location)
    if version is not None:
        store.manifest(version)  # unknown or invalid version: clear error now
    return store, version


def _sql_list(texts: list[str]) -> str:
    return "[" + ", ".join("'" + t.replace("'", "''") + "'" for t in texts) + "]"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return text.replace("'", "''")


def _message(exc: Exception) -> str:
    """DuckDB's message without blank lines, keeping its hints ("Did you mean", "Candidate bindings") and the
    ``LINE 1: ...`` line with its ``^`` marker, whose indentation is what points at the error."""
    lines = [line.rstrip() for line in str(exc).splitlines() if line.strip()]
    return "\n".join(lines) if lines else type(exc).__name__
