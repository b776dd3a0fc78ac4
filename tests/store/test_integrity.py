"""prefgen.store.integrity: one file against its manifest entry, cheap or in full, with the hash streamed."""

from __future__ import annotations

import hashlib
import os

import pytest

from prefgen.store.integrity import file_problem, has_parquet_marks, sha256_file

SHARD = "data/v1/train-00000-of-00001.parquet"


def test_hashing_streams_the_file_and_reports_progress(tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 123)
    path.write_bytes(data)
    seen = []
    assert sha256_file(path, seen.append) == hashlib.sha256(data).hexdigest()
    assert seen == [1 << 20, 1 << 20, 1 << 20, 123]  # one reused 1 MiB buffer, never the whole file


def test_a_sound_file_passes_both_depths(make_store):
    store = make_store({"v1": 2})
    shard = store.manifest("v1").files[0]
    assert file_problem(store.root / SHARD, shard, full=False) is None
    assert file_problem(store.root / SHARD, shard, full=True) is None


@pytest.mark.parametrize(("content", "expected"), [(b"PAR1xxPAR1", True), (b"PAR1xxPAR", False), (b"PAR", False)])
def test_parquet_marks(tmp_path, content, expected):
    (tmp_path / "f").write_bytes(content)
    assert has_parquet_marks(tmp_path / "f") is expected


def test_the_cheap_check_does_not_hash(make_store):
    store = make_store({"v1": 2})
    shard = store.manifest("v1").files[0]
    wrong = shard.model_copy(update={"sha256": "0" * 64, "rows": 99})
    assert file_problem(store.root / SHARD, wrong, full=False) is None
    assert file_problem(store.root / SHARD, wrong, full=True) == (
        "sha256 differs from the manifest (its bytes changed after it was published)"
    )
    assert file_problem(store.root / SHARD, shard.model_copy(update={"rows": 99}), full=True) == (
        "2 rows where the manifest says 99"
    )


def test_hashing_memory_does_not_grow_with_the_file(tmp_path):
    import tracemalloc

    path = tmp_path / "big.bin"
    with open(path, "wb") as fh:
        for _ in range(32):
            fh.write(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        sha256_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * (1 << 20)  # the one 1 MiB buffer, for a 32 MiB file
