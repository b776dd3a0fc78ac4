import json
import os
import signal
import subprocess
import sys

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import pair_rows

from prefgen.core.errors import StoreError
from prefgen.store.folder import Store


def card_header(store):
    text = (store.root / "README.md").read_text()
    return yaml.safe_load(text.split("---")[1])


def test_publish_writes_the_layout_and_manifest(make_store):
    store = make_store({"v1": 3})
    assert sorted(
        p.relative_to(store.root).as_posix()
        for p in store.root.rglob("*")
        if p.is_file() and ".prefgen" not in p.parts
    ) == ["README.md", "data/v1/train-00000-of-00001.parquet", "rejects/v1.parquet", "versions/v1.json"]
    manifest = json.loads((store.root / "versions" / "v1.json").read_text())
    assert manifest["version"] == "v1" and manifest["rows"] == 3 and manifest["parent"] is None
    assert manifest["message"] == "v1 rows" and manifest["origin"] == "build"
    assert manifest["files"][0]["rows"] == 3 and len(manifest["files"][0]["sha256"]) == 64
    assert manifest["columns"][:5] == ["id", "images", "prompt", "chosen", "rejected"]


def test_card_lists_a_config_per_version_and_default_is_latest(make_store):
    store = make_store({"v1": 3, "v2": 2})
    configs = {c["config_name"]: c["data_files"][0]["path"] for c in card_header(store)["configs"]}
    assert configs == {"default": "data/v2/*.parquet", "v2": "data/v2/*.parquet", "v1": "data/v1/*.parquet"}
    assert store.manifest("v2").parent == "v1"


def test_load_dataset_reads_latest_by_default_and_each_version_by_config(make_store):
    store = make_store({"v1": 3, "v2": 2})
    latest = datasets.load_dataset(str(store.root), split="train")
    first = datasets.load_dataset(str(store.root), "v1", split="train")
    assert latest["id"] == ["v20", "v21"]
    assert first["id"] == ["v10", "v11", "v12"]
    assert first[2]["images"][0].getpixel((0, 0)) == (20, 100, 200)


def test_loaded_features_are_exactly_what_trl_reads_for_vlms(make_store):
    from trl.data_utils import is_conversational, prepare_multimodal_messages

    store = make_store({"v1": 2})
    ds = datasets.load_dataset(str(store.root), split="train")
    message = datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")})
    assert ds.features["images"] == datasets.List(datasets.Image())
    assert ds.features["prompt"] == ds.features["chosen"] == ds.features["rejected"] == message
    row = ds[1]
    assert is_conversational(row)
    prompt = prepare_multimodal_messages(row["prompt"], images=row["images"])
    assert prompt[0]["content"][0]["type"] == "image"
    assert prompt[0]["content"][1] == {"type": "text", "text": "What is in picture 1?"}


def test_versions_are_immutable(make_store):
    store = make_store({"v1": 1})
    with pytest.raises(StoreError, match="already exists .* immutable"):
        store.draft("v1")
    shard = store.data_files("v1")[0]
    assert not os.access(shard, os.W_OK) or os.geteuid() == 0  # root ignores permission bits
    assert oct(shard.stat().st_mode & 0o222) == "0o0"


@pytest.mark.parametrize("name", ["a/b", "..", "../x", "v1/../v2", ".hidden", "default", "", "x" * 65])
def test_bad_version_names_are_refused_without_changes(make_store, name):
    store = make_store({"v1": 1})
    before = sorted(p for p in store.root.rglob("*"))
    with pytest.raises(StoreError, match="invalid version name"):
        store.draft(name)
    with pytest.raises(StoreError, match="invalid version name"):
        store.manifest(name)
    assert sorted(p for p in store.root.rglob("*")) == before


def test_next_version_name_counts_up(make_store):
    store = make_store({"v1": 1, "v7": 1})
    with store.draft() as draft:
        assert draft.version == "v8"


def test_a_second_writer_is_kept_out(make_store):
    store = make_store({"v1": 1})
    with store.draft("v2"):
        with pytest.raises(StoreError, match="being written by another process"):
            Store(store.root).draft("v3")


def test_unpublished_drafts_are_invisible(make_store):
    store = make_store({"v1": 2})
    draft = store.draft("v2")
    draft.write_shard(0, pair_rows("x", 2))
    draft.close()
    assert store.versions() == ["v1"]
    assert datasets.load_dataset(str(store.root), split="train").num_rows == 2


def test_a_draft_is_continued_by_a_writer_with_the_same_meta(make_store):
    store = make_store({})
    draft = store.draft(meta={"recipe": "abc"})
    draft.write_shard(0, pair_rows("a", 2))
    draft.close()
    with store.draft(meta={"recipe": "abc"}) as again:
        assert again.version == "v1" and list(again.shards()) == [0]
        again.write_shard(1, pair_rows("b", 1))
        manifest = again.publish()
    assert manifest.rows == 3 and [f.rows for f in manifest.files] == [2, 1]


def test_a_draft_from_another_build_is_replaced_and_says_so(make_store):
    store = make_store({})
    draft = store.draft("v1", meta={"recipe": "abc"})
    draft.write_shard(0, pair_rows("a", 2))
    draft.close()
    with store.draft("v1", meta={"recipe": "other"}) as other:
        assert other.replaced is True and other.shards() == {}
    with store.draft("v1", meta={"recipe": "other"}, fresh=True) as fresh:
        assert fresh.replaced is False and fresh.shards() == {}


def test_rows_without_the_contract_columns_are_refused(make_store):
    store = make_store({})
    rows = [{k: v for k, v in row.items() if k != "rejected"} for row in pair_rows("a", 1)]
    with store.draft("v1") as draft, pytest.raises(StoreError, match="required column"):
        draft.write_shard(0, rows)


def test_publishing_an_empty_draft_is_refused(make_store):
    store = make_store({})
    with store.draft("v1") as draft, pytest.raises(StoreError, match="no rows"):
        draft.publish()


def test_shards_with_different_columns_cannot_be_one_version(make_store):
    store = make_store({})
    with store.draft("v1") as draft:
        draft.write_shard(0, pair_rows("a", 1))
        draft.write_shard(1, [{**row, "extra": 1} for row in pair_rows("b", 1)])
        with pytest.raises(StoreError, match="different columns"):
            draft.publish()


def test_publication_interrupted_after_the_data_move_is_completed_by_the_next_writer(make_store):
    store = make_store({"v1": 1})
    with store.draft("v2") as draft:
        draft.write_shard(0, pair_rows("b", 2))
        original = Store._recover
        Store._recover = lambda self: None  # the writer dies before the manifest reaches versions/
        try:
            draft.publish()
        finally:
            Store._recover = original
    assert store.versions() == ["v1"]
    with store.draft("v3"):
        pass
    assert store.versions() == ["v1", "v2"]
    assert card_header(store)["configs"][0]["data_files"][0]["path"] == "data/v2/*.parquet"


def test_a_writer_killed_mid_draft_leaves_no_version_and_can_be_continued(tmp_path):
    script = f"""
import sys, time
sys.path.insert(0, {str(os.path.dirname(os.path.dirname(__file__)))!r})
from conftest import pair_rows
from prefgen.store.folder import Store
store = Store.create({str(tmp_path / "s")!r})
draft = store.draft(meta={{"job": 1}})
for i in range(100):
    draft.write_shard(i, pair_rows(f"s{{i}}-", 2))
    print(i, flush=True)
    time.sleep(0.05)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for _ in range(3):
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(tmp_path / "s")
    assert store.versions() == []
    with store.draft(meta={"job": 1}) as draft:
        done = draft.shards()
        assert len(done) >= 3 and sorted(done) == list(range(len(done)))
        assert all(pq.read_metadata(p).num_rows == 2 for p in done.values())
        assert not list(draft.path.glob("*.tmp")) or True  # a torn temp file may exist; it is never a shard
        manifest = draft.publish()
    assert manifest.rows == 2 * len(done)


def test_missing_store_and_non_store_folders_are_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "absent")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="not a prefgen store"):
        Store(tmp_path / "plain")
    (tmp_path / "plain" / "file.txt").write_text("x")
    with pytest.raises(StoreError, match="not empty and is not a store"):
        Store.create(tmp_path / "plain")


def test_corrupt_manifest_and_missing_data_are_reported(make_store):
    store = make_store({"v1": 1, "v2": 1})
    (store.root / "versions" / "v2.json").write_text("{not json")
    with pytest.raises(StoreError) as info:
        store.versions()
    assert str(info.value) == (
        "corrupt manifest versions/v2.json: not valid JSON: Expecting property name enclosed in double quotes "
        f"at line 1, column 2; run `prefgen verify {store.root}`"
    )
    (store.root / "versions" / "v2.json").unlink()
    store.data_files("v1")[0].unlink()
    with pytest.raises(StoreError) as info:
        store.data_files("v1")
    assert str(info.value) == (
        f"version v1 is damaged: data/v1/train-00000-of-00001.parquet: missing; run `prefgen verify {store.root}`"
    )


def test_unknown_version_lists_the_known_ones(make_store):
    store = make_store({"v1": 1, "v2": 1})
    with pytest.raises(StoreError, match=r"unknown version 'v3' .* \(versions: v1, v2\)"):
        store.manifest("v3")


def test_images_given_as_paths_are_embedded(make_store, tmp_path):
    from PIL import Image

    Image.new("RGB", (5, 4), (1, 2, 3)).save(tmp_path / "pic.png")
    store = make_store({})
    row = {**pair_rows("p", 1)[0], "images": [str(tmp_path / "pic.png")]}
    with store.draft("v1") as draft:
        draft.write_shard(0, [row])
        draft.publish()
    (tmp_path / "pic.png").unlink()
    image = datasets.load_dataset(str(store.root), split="train")[0]["images"][0]
    assert image.size == (5, 4) and image.getpixel((0, 0)) == (1, 2, 3)


def test_image_bytes_are_stored_even_when_a_file_of_that_name_is_in_the_current_folder(
    make_store, tmp_path, monkeypatch
):
    """datasets' encoder would keep only the path of such an image; a store must never depend on outside files."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (5, 4), (9, 8, 7)).save(buffer, format="PNG")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scene.png").write_bytes(buffer.getvalue())
    store = make_store({})
    row = {**pair_rows("p", 1)[0], "images": [{"bytes": buffer.getvalue(), "path": "scene.png"}]}
    with store.draft("v1") as draft:
        draft.write_shard(0, [row])
        draft.publish()
    (tmp_path / "scene.png").unlink()
    image = datasets.load_dataset(str(store.root), split="train")[0]["images"][0]
    assert image.size == (5, 4) and image.getpixel((0, 0)) == (9, 8, 7)


def test_a_manifest_from_a_newer_prefgen_asks_for_an_upgrade(make_store):
    store = make_store({"v1": 1})
    path = store.root / "versions" / "v1.json"
    path.write_text(path.read_text().replace('"format": 1', '"format": 2'))
    with pytest.raises(StoreError, match="written by a newer prefgen"):
        store.versions()


def test_two_stores_with_the_same_folder_name_load_their_own_rows(tmp_path):
    from prefgen.store.folder import Store

    loaded = []
    for parent, text in (("a", "short"), ("b", "a much longer answer text")):
        store = Store.create(tmp_path / parent / "store")
        rows = [{**row, "chosen": [{"role": "assistant", "content": text}]} for row in pair_rows("x", 2)]
        with store.draft("v1") as draft:
            draft.write_shard(0, rows)
            draft.publish()
        loaded.append(datasets.load_dataset(str(store.root), "v1", split="train")[0]["chosen"][0]["content"])
    assert loaded == ["short", "a much longer answer text"]


def test_loading_a_store_logs_no_complaint_about_its_card(make_store, caplog):
    import logging

    import datasets

    store = make_store({"v1": 2})
    with caplog.at_level(logging.WARNING):
        datasets.load_dataset(str(store.root), split="train")
    assert not [r for r in caplog.records if "malformed" in r.getMessage() or "Ignoring" in r.getMessage()]


@pytest.mark.parametrize("renamed", [0, 1, 2])
def test_a_writer_killed_while_renaming_shards_is_completed_by_the_next_writer(make_store, monkeypatch, renamed):
    import prefgen.store.folder as folder

    store = make_store({"v1": 1})
    draft = store.draft("v2")
    for i in range(3):
        draft.write_shard(i, pair_rows(f"s{i}-", 2))
    real = folder.move_file
    calls = []

    def dies_after(src, dest):
        if len(calls) == renamed:
            raise KeyboardInterrupt  # the writer is killed after its manifest was written
        calls.append(dest)
        real(src, dest)

    monkeypatch.setattr(folder, "move_file", dies_after)
    with pytest.raises(KeyboardInterrupt):
        draft.publish()
    draft.close()
    monkeypatch.setattr(folder, "move_file", real)
    assert store.versions() == ["v1"]  # not visible yet

    with store.draft("v3"):  # the next writer finishes v2 first
        pass

    assert store.versions() == ["v1", "v2"]
    assert [f.rows for f in store.manifest("v2").files] == [2, 2, 2]
    from prefgen.store.verify import verify_store

    assert verify_store(store).problems == []
    assert run_ids(store, "v2") == [f"s{i}-{j}" for i in range(3) for j in range(2)]


def run_ids(store, version):
    from prefgen.store.query import run_query

    return run_query(store, f'SELECT id FROM "{version}"').column("id").to_pylist()


def test_the_card_names_the_newest_recipe_s_license_or_other(tmp_path):
    from prefgen.store.card import card_license

    store = Store.create(tmp_path / "store")
    with store.draft("v1") as draft:
        draft.write_shard(0, pair_rows("v1", 2))
        draft.publish(message="no license")
    assert card_header(store)["license"] == "other"
    with store.draft("v2") as draft:
        draft.write_shard(0, pair_rows("v2", 2))
        draft.publish(message="cc", recipe={"name": "r", "output": {"store": "s", "license": "cc-by-4.0"}})
    assert card_header(store)["license"] == "cc-by-4.0"
    assert "License: `cc-by-4.0`" in (store.root / "README.md").read_text()
    assert card_license(store.manifests()[:1]) == "other"


def test_a_recipe_license_is_a_hub_license_name():
    from pydantic import ValidationError

    from prefgen.recipe.model import Output

    assert Output(store="s", license="apache-2.0").license == "apache-2.0"
    with pytest.raises(ValidationError, match="license"):
        Output(store="s", license="CC BY 4.0")
