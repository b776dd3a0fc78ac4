"""A build that meets a full disk or a folder it cannot write: one line naming the folder, the draft resumable, the
published versions untouched. The disk is filled by making pyarrow's writes fail as they do on a full disk."""

from __future__ import annotations

import errno
import os

import build_stages
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from engine.test_runner import make_images, published_rows, quiet, write_recipe

import prefgen.core.fs
from prefgen.cli.main import cli
from prefgen.core.errors import PrefgenError
from prefgen.core.fs import DiskFullError
from prefgen.engine.runner import run_build
from prefgen.recipe.catalogue import STAGES
from prefgen.store.folder import Store
from prefgen.store.verify import verify_store

FULL = OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")


@pytest.fixture(autouse=True)
def toy_stages(monkeypatch):
    for name, cls in build_stages.TOY_STAGES.items():
        monkeypatch.setitem(STAGES, name, cls)


@pytest.fixture
def two_recipes(tmp_path):
    """A store holding v1, and a second recipe whose build would publish v2."""
    make_images(tmp_path / "images", 30)
    run_build(write_recipe(tmp_path, suffix="!"), quiet(shard_size=10))
    return tmp_path / "store", write_recipe(tmp_path, name="second.yaml", suffix="?")


def fill_the_disk_at(monkeypatch, name_start: str) -> None:
    """pyarrow's write_table fails like a full disk when it writes a file whose name starts with ``name_start``."""
    real = pq.write_table

    def write_table(table, where, *args, **kwargs):
        if os.path.basename(str(where)).startswith(name_start):
            raise FULL
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_table)


def snapshot(root):
    return sorted((p.relative_to(root).as_posix(), p.read_bytes()) for p in root.rglob("*") if p.is_file())


def published(root):
    return [(path, data) for path, data in snapshot(root) if not path.startswith(".prefgen/")]


def test_a_full_disk_mid_build_is_one_line_and_the_draft_resumes(two_recipes, tmp_path, monkeypatch):
    store, second = two_recipes
    before = published(store)
    fill_the_disk_at(monkeypatch, ".shard-00001.parquet.")

    with pytest.raises(DiskFullError) as info:
        run_build(second, quiet(shard_size=10))

    draft = store / ".prefgen" / "drafts" / "v2"
    assert str(info.value) == f"no space left on the device holding {draft}: free some space and run again"
    assert sorted(p.name for p in draft.iterdir()) == [
        "draft.json",
        "rejects-00000.parquet",
        "rejects-00001.parquet",
        "shard-00000.parquet",
    ]
    assert published(store) == before and verify_store(Store(store)).problems == []
    monkeypatch.undo()
    for name, cls in build_stages.TOY_STAGES.items():  # undo removed the toy stages too
        monkeypatch.setitem(STAGES, name, cls)

    resumed = run_build(second, quiet(shard_size=10))

    # shard 0 stayed in the draft; shard 1's stage outputs had reached the stage cache; only shard 2 is computed
    assert resumed.manifest.version == "v2"
    assert (resumed.cached["toy_answer"], resumed.computed["toy_answer"]) == (1, 1)
    reference = run_build(second, quiet(shard_size=10, out=tmp_path / "reference"))
    assert published_rows(store, "v2") == published_rows(tmp_path / "reference", reference.manifest.version)


def test_a_full_disk_while_publishing_leaves_the_draft_whole(two_recipes, monkeypatch):
    store, second = two_recipes
    before = published(store)
    real = prefgen.core.fs.fsync_file

    def fsync_file(path):
        if "manifest.pending.json" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path)

    monkeypatch.setattr(prefgen.core.fs, "fsync_file", fsync_file)
    with pytest.raises(DiskFullError, match=r"^no space left on the device holding .*/\.prefgen/drafts/v2: free"):
        run_build(second, quiet(shard_size=10))

    draft = store / ".prefgen" / "drafts" / "v2"
    assert sorted(p.name for p in draft.glob("shard-*.parquet")) == [f"shard-0000{i}.parquet" for i in range(3)]
    assert not [p for p in draft.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    assert Store(store).versions() == ["v1"]
    assert [item for item in published(store) if not item[0].startswith("rejects/v2")] == before
    monkeypatch.setattr(prefgen.core.fs, "fsync_file", real)
    assert run_build(second, quiet(shard_size=10)).manifest.rows == Store(store).manifest("v1").rows


def test_the_cli_says_it_in_one_line(two_recipes, monkeypatch):
    store, second = two_recipes
    fill_the_disk_at(monkeypatch, ".shard-00000.parquet.")
    result = CliRunner().invoke(cli, ["build", str(second), "--quiet", "--shard-size", "10"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no space left on the device holding {store / '.prefgen' / 'drafts' / 'v2'}: free some space and "
        "run again\n"
    )


def test_a_store_folder_that_cannot_be_written_stops_the_build_before_any_stage_runs(tmp_path, monkeypatch):
    make_images(tmp_path / "images", 4)
    recipe = write_recipe(tmp_path)
    locked = tmp_path / "store"
    locked.mkdir()
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT and str(path).startswith(str(locked)):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args)

    def no_setup(self, models):
        raise AssertionError("a stage was set up (its models loaded) before the store was found read-only")

    monkeypatch.setattr(os, "open", read_only)
    monkeypatch.setattr(build_stages.ToyAnswer, "setup", no_setup, raising=False)
    result = CliRunner().invoke(cli, ["build", str(recipe), "--quiet"])
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot write to {locked}: Permission denied\n"
    assert list(locked.iterdir()) == []


def test_deriving_into_a_read_only_store_is_one_line(make_store, monkeypatch):
    store = make_store({"v1": 2})
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT and str(path).startswith(str(store.root)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(PrefgenError) as info:
        store.draft("v2")
    assert str(info.value) == f"cannot write to {store.root}: Read-only file system"
