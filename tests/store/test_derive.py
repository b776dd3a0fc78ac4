import datasets
import pytest

from prefgen.core.errors import QueryError, StoreError
from prefgen.store.derive import derive


def snapshot(root):
    return sorted(
        (p.relative_to(root).as_posix(), p.stat().st_size) for p in root.rglob("*") if p.is_file() and p.name != "lock"
    )


def test_derive_publishes_the_selected_rows_with_images_and_parent(make_store):
    store = make_store({"v1": 5})
    manifest = derive(store, "SELECT * FROM pairs WHERE margin > 0.25 ORDER BY id", message="margin > 0.25")
    assert (manifest.version, manifest.parent, manifest.origin, manifest.rows) == ("v2", "v1", "derive", 2)
    assert manifest.query == "SELECT * FROM pairs WHERE margin > 0.25 ORDER BY id"
    ds = datasets.load_dataset(str(store.root), "v2", split="train")
    assert ds["id"] == ["v13", "v14"]
    assert ds.features["images"] == datasets.List(datasets.Image())
    assert ds[0]["images"][0].getpixel((0, 0)) == (30, 100, 200)


def test_derive_from_a_named_version_records_it_as_parent(make_store):
    store = make_store({"v1": 3, "v2": 2})
    manifest = derive(store, 'SELECT * FROM "v1" LIMIT 1', message="one", version="one-row")
    assert (manifest.version, manifest.parent, manifest.rows) == ("one-row", "v1", 1)


def test_derived_columns_are_kept_and_typed(make_store):
    store = make_store({"v1": 3})
    derive(store, "SELECT *, length(chosen[1].content) AS chosen_chars FROM pairs", message="lengths")
    ds = datasets.load_dataset(str(store.root), split="train")
    assert ds["chosen_chars"] == [len("A blue square number 0.")] * 3
    assert ds.features["prompt"] == datasets.List(
        {"role": datasets.Value("string"), "content": datasets.Value("string")}
    )


@pytest.mark.parametrize(
    "sql, error, match",
    [
        ("SELECT * FROM pairs WHERE margin > 5", QueryError, "returned no rows"),
        ("SELECT id, prompt, chosen, rejected FROM pairs", StoreError, "required column"),
        ("SELECT id, images, prompt[1].content AS prompt, chosen, rejected FROM pairs", StoreError, "column 'prompt'"),
        ("DELETE FROM pairs", QueryError, "read-only"),
        ("SELECT 1 AS x", QueryError, "reads no version"),
        ("SELECT nonsense FROM pairs", QueryError, "query failed"),
    ],
)
def test_a_failed_derive_changes_nothing(make_store, sql, error, match):
    store = make_store({"v1": 2})
    before = snapshot(store.root)
    with pytest.raises(error, match=match):
        derive(store, sql, message="x")
    assert snapshot(store.root) == before
    assert store.versions() == ["v1"]


def test_derive_refuses_an_existing_version_name(make_store):
    store = make_store({"v1": 2})
    with pytest.raises(StoreError, match="immutable"):
        derive(store, "SELECT * FROM pairs", message="x", version="v1")
