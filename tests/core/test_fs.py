"""prefgen.core.fs: writes that land whole or not at all, folders moved in with one rename, JSON errors in one line."""

from __future__ import annotations

import errno
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefgen.core import fs
from prefgen.core.errors import PrefgenError


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_atomic_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    fs.atomic_write_text(target, '{"new": 1}')
    assert target.read_text() == '{"new": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_bytes_creates_a_new_file(tmp_path):
    fs.atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "t.parquet"
    target.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="writer died"):
        with fs.atomic_file(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_atomic_file_serves_writers_that_take_a_path(tmp_path):
    with fs.atomic_file(tmp_path / "t.parquet") as tmp:
        pq.write_table(pa.table({"x": [1, 2, 3]}), tmp)
    assert pq.read_table(tmp_path / "t.parquet").column("x").to_pylist() == [1, 2, 3]


def test_the_temporary_name_is_hidden_from_the_globs_readers_use(tmp_path):
    name = fs.temp_name(tmp_path / "v1.json")
    assert name.parent == tmp_path and name.name.startswith(".v1.json.") and name.suffix == ".tmp"
    name.write_text("{}")
    assert list(tmp_path.glob("*.json")) == []


def test_a_full_disk_is_one_line_naming_the_folder_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "README.md"
    target.write_text("old card")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(fs.DiskFullError) as info:
        fs.atomic_write_text(target, "new card")
    assert str(info.value) == f"no space left on the device holding {tmp_path}: free some space and run again"
    assert target.read_text() == "old card"
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_pyarrows_full_disk_error_is_recognised(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    # An open stream, not the path: given a path, write_table deletes the file it failed to write.
    with pytest.raises(OSError) as info, pa.OSFile("/dev/full", "wb") as device:
        pq.write_table(pa.table({"x": list(range(1000))}), device)
    assert isinstance(fs.disk_full(info.value, tmp_path), fs.DiskFullError)
    assert fs.disk_full(OSError(errno.EACCES, "Permission denied"), tmp_path) is None


def test_replace_folder_moves_a_folder_in_and_replaces_an_old_one(tmp_path):
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "f").write_text("new")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "g").write_text("old")
    fs.replace_folder(tmp_path / "new", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["f"]


def test_replace_folder_puts_the_old_folder_back_when_the_move_fails(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "g").write_text("old")
    with pytest.raises(FileNotFoundError):
        fs.replace_folder(tmp_path / "absent", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out" / "g").read_text() == "old"


def test_folder_beside_builds_hidden_then_renames(tmp_path):
    with fs.folder_beside(tmp_path / "export") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".export.") and tmp.name.endswith(".partial")
        (tmp / "data.json").write_text("[]")
        assert not (tmp_path / "export").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert (tmp_path / "export" / "data.json").read_text() == "[]"


def test_folder_beside_leaves_nothing_when_the_block_fails(tmp_path):
    with pytest.raises(ValueError):
        with fs.folder_beside(tmp_path / "export") as tmp:
            (tmp / "data.json").write_text("[")
            raise ValueError("bad row")
    assert list(tmp_path.iterdir()) == []


def test_read_json_names_the_file_and_the_position_of_the_error(tmp_path):
    (tmp_path / "m.json").write_text('{\n  "version": "v1"\n  "rows": 3\n}\n')
    with pytest.raises(PrefgenError) as info:
        fs.read_json(tmp_path / "m.json", shown="versions/m.json")
    assert str(info.value) == "versions/m.json: not valid JSON: Expecting ',' delimiter at line 3, column 3"


def test_read_json_of_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(PrefgenError) as info:
        fs.read_json(tmp_path / "none.json")
    assert str(info.value) == f"cannot read {tmp_path / 'none.json'}: No such file or directory"


def test_check_writable_passes_a_writable_folder_and_one_still_to_create(tmp_path):
    fs.check_writable(tmp_path)
    fs.check_writable(tmp_path / "not" / "yet")
    assert list(tmp_path.iterdir()) == []  # the probe is gone


def test_check_writable_refuses_a_read_only_folder_in_one_line(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(PrefgenError) as info:
        fs.check_writable(tmp_path / "store")
    assert str(info.value) == f"cannot write to {tmp_path / 'store'}: Read-only file system (in {tmp_path})"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_refuses_a_folder_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(PrefgenError, match=f"^cannot write to {locked}: Permission denied$"):
        fs.check_writable(locked)


def test_folder_beside_a_read_only_folder_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(PrefgenError) as info:
        with fs.folder_beside(tmp_path / "out"):
            raise AssertionError("the block must not run")
    assert str(info.value) == f"cannot write to {tmp_path}: Permission denied"
    assert list(tmp_path.iterdir()) == []
