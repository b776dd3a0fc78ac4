"""``prefgen derive``: publish the result of a SQL query over a store as a new version of it.

Typical use: re-tune a threshold on stored scores without recomputing anything
(``SELECT * FROM pairs WHERE margin > 0.2``). Image bytes travel with the rows; the features (images, messages)
are taken from the parent version so the result loads in datasets and trl exactly like the parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from prefgen.core.errors import QueryError, StoreError
from prefgen.store.folder import Store
from prefgen.store.manifest import Manifest
from prefgen.store.query import check_select, connect, explain, referenced_versions

if TYPE_CHECKING:
    import pyarrow as pa

SHARD_BYTES = 256 << 20  # target size of one parquet file


def derive(store: Store, sql: str, *, message: str, version: str | None = None) -> Manifest:
    """Run ``sql`` (one SELECT) and publish its rows as a new version whose parents are the versions it read
    (``parent``: the newest of them)."""
    import pyarrow.parquet as pq

    check_select(sql)
    sources = referenced_versions(store, sql)
    if not sources:
        raise QueryError("the query reads no version of the store (use `pairs` or a version's view)")
    parent = store.manifest(sources[-1])
    parent_schema = pq.read_schema(store.data_files(parent.version)[0])
    con = connect(store, images=True, sql=sql)
    try:
        reader = con.sql(sql).to_arrow_reader(1024)
        draft = store.draft(version, meta={"derive": sql}, fresh=True)
        try:
            written = 0
            for index, table in enumerate(_shards(reader)):
                draft.write_shard(index, _with_parent_features(table, parent_schema))
                written += table.num_rows
            if not written:
                raise QueryError("the query returned no rows; nothing was published")
            inherited = parent.model_dump(include={"recipe", "recipe_fingerprint", "models", "seed", "round"})
            return draft.publish(
                parent=parent.version, parents=sources, message=message, origin="derive", query=sql, **inherited
            )
        except BaseException:
            draft.discard()  # a failed derive leaves the store exactly as it was
            raise
    except Exception as exc:
        import duckdb

        if isinstance(exc, duckdb.Error):
            raise explain(store, sql, exc) from None
        raise
    finally:
        con.close()


def _shards(reader) -> Iterator["pa.Table"]:
    import pyarrow as pa

    batches, size, yielded = [], 0, False
    for batch in reader:
        batches.append(batch)
        size += batch.nbytes
        if size >= SHARD_BYTES:
            yield pa.Table.from_batches(batches)
            batches, size, yielded = [], 0, True
    if batches or not yielded:
        yield pa.Table.from_batches(batches, schema=reader.schema)


def _with_parent_features(table: "pa.Table", parent_schema: "pa.Schema") -> "pa.Table":
    """Cast the query's columns to the parent's features where names match, inferring the rest."""
    import pyarrow as pa
    from datasets import Features

    parent = Features.from_arrow_schema(parent_schema)
    own = Features.from_arrow_schema(table.schema)
    features = Features({name: parent.get(name, own[name]) for name in table.column_names})
    try:
        return table.cast(features.arrow_schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        bad = next(
            (n for n in table.column_names if n in parent and not _castable(table.schema.field(n).type, parent[n])),
            None,
        )
        what = f"column {bad!r} has type {table.schema.field(bad).type}, not the parent's" if bad else str(exc)
        raise StoreError(f"the query's rows do not fit the store: {what}") from None


def _castable(arrow_type, feature) -> bool:
    import pyarrow as pa
    from datasets import Features

    try:
        pa.array([], type=arrow_type).cast(Features({"x": feature}).arrow_schema.field("x").type)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
