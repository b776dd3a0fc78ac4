import pytest
from conftest import pair_rows

from prefgen.core.errors import QueryError, StoreError
from prefgen.store.query import parse_ref, referenced_versions, run_query


def test_pairs_is_the_latest_version_and_each_version_has_a_view(make_store):
    store = make_store({"v1": 3, "v2": 2})
    assert run_query(store, "SELECT id FROM pairs ORDER BY id").column("id").to_pylist() == ["v20", "v21"]
    assert run_query(store, 'SELECT count(*) AS n FROM "v1"').column("n").to_pylist() == [3]


def test_versions_view_lists_manifests(make_store):
    store = make_store({"v1": 3, "v2": 2})
    table = run_query(store, "SELECT version, rows, parent, message FROM versions ORDER BY created_at")
    assert table.to_pylist() == [
        {"version": "v1", "rows": 3, "parent": None, "message": "v1 rows"},
        {"version": "v2", "rows": 2, "parent": "v1", "message": "v2 rows"},
    ]


def test_messages_and_scores_are_plain_sql(make_store):
    store = make_store({"v1": 4})
    table = run_query(store, "SELECT prompt[1].content AS q, chosen[1].role AS role FROM pairs WHERE margin > 0.25")
    assert table.to_pylist() == [{"q": "What is in picture 3?", "role": "assistant"}]


def test_image_bytes_are_left_out_unless_asked(make_store):
    store = make_store({"v1": 1})
    assert "images" not in run_query(store, "SELECT * FROM pairs").column_names
    with_images = run_query(store, "SELECT images[1].bytes AS b FROM pairs", images=True)
    assert with_images.column("b").to_pylist()[0].startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "sql, kind",
    [
        ("DELETE FROM pairs", "DELETE"),
        ("INSERT INTO pairs VALUES (1)", "INSERT"),
        ("CREATE TABLE t AS SELECT 1", "CREATE"),
        ("COPY (SELECT 1) TO 'x.csv'", "COPY"),
        ("DROP VIEW pairs", "DROP"),
        ("ATTACH 'other.db'", "ATTACH"),
        ("SET enable_external_access = true", "SET"),
    ],
)
def test_statements_that_change_things_are_refused(make_store, sql, kind):
    store = make_store({"v1": 1})
    with pytest.raises(QueryError, match=f"read-only: only SELECT queries run here \\(got {kind}"):
        run_query(store, sql)


def test_selects_cannot_reach_files_outside_the_store(make_store, tmp_path):
    store = make_store({"v1": 1})
    (tmp_path / "secret.csv").write_text("a\n1\n")
    with pytest.raises(QueryError, match="query failed: Permission Error"):
        run_query(store, f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')")


def test_several_statements_are_refused(make_store):
    store = make_store({"v1": 1})
    with pytest.raises(QueryError, match="exactly one SQL statement"):
        run_query(store, "SELECT 1; SELECT 2")


def test_bad_sql_is_one_clear_error(make_store):
    store = make_store({"v1": 1})
    with pytest.raises(QueryError, match="bad SQL: Parser Error"):
        run_query(store, "SELEC id FROM pairs")
    with pytest.raises(QueryError, match="query failed: Catalog Error: Table with name nope does not exist"):
        run_query(store, "SELECT * FROM nope")


def test_referenced_versions_follow_pairs_to_the_latest(make_store):
    store = make_store({"v1": 1, "v2": 1})
    assert referenced_versions(store, "SELECT * FROM pairs") == ["v2"]
    assert referenced_versions(store, 'SELECT * FROM "v1" UNION ALL SELECT * FROM pairs') == ["v1", "v2"]


def test_parse_ref_splits_store_and_version(make_store):
    store = make_store({"v1": 1})
    assert parse_ref(str(store.root))[1] is None
    assert parse_ref(f"{store.root}@v1")[1] == "v1"
    with pytest.raises(StoreError, match="unknown version 'v2'"):
        parse_ref(f"{store.root}@v2")
    # core.refs' grammar: what follows '@' is a version only when it is a version name, else part of the path
    with pytest.raises(StoreError, match=r"no store at .*store@\.\./v1"):
        parse_ref(f"{store.root}@../v1")


def test_stores_under_awkward_paths_are_queryable(make_store, tmp_path):
    store = make_store({"v1": 2}, root=tmp_path / 'it\'s a "store"')
    assert run_query(store, "SELECT count(*) AS n FROM pairs").column("n").to_pylist() == [2]


def test_rejects_view_lists_every_version(make_store):
    store = make_store({"v1": 1})
    with store.draft("v2") as draft:
        draft.write_rejects(0, [{"row_id": "r1", "stage": "answer", "reason": "empty_answer", "detail": ""}])
        draft.write_shard(0, pair_rows("b", 1))
        draft.publish()
    table = run_query(store, "SELECT version, row_id, stage, reason FROM rejects")
    assert table.to_pylist() == [{"version": "v2", "row_id": "r1", "stage": "answer", "reason": "empty_answer"}]
    assert store.manifest("v2").rejects == 1 and store.manifest("v1").rejects == 0
