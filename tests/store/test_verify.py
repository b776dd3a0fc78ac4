"""prefgen.store.verify and `prefgen verify`: every kind of damage is one exact line naming the file, with exit 1."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from prefgen.cli.main import cli
from prefgen.store.verify import verify_store

SHARD = "data/v1/train-00000-of-00001.parquet"


def verify(*args):
    return CliRunner().invoke(cli, ["verify", *[str(a) for a in args]])


def writable(path):
    path.chmod(0o644)  # published shards are read-only
    return path


def flip_middle_byte(path):
    data = bytearray(writable(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def store(make_store):
    return make_store({"v1": 3, "v2": 2})


def test_a_sound_store_prints_one_summary_line_and_exits_0(store):
    size = sum(f.bytes for v in ("v1", "v2") for f in store.manifest(v).files)
    result = verify(store.root)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{store.root}: 2 versions, 2 data files ({size / 1e3:.1f} kB, 5 rows) match their manifests "
        "(sha256, sizes, rows); no problems\n"
    )


def test_quick_says_what_it_checked(store):
    result = verify(store.root, "--quick")
    assert result.exit_code == 0 and result.stdout.endswith("match their manifests (sizes, rows); no problems\n")


def test_a_truncated_file(store):
    size = (store.root / SHARD).stat().st_size
    os.truncate(writable(store.root / SHARD), 2000)
    result = verify(store.root)
    assert result.exit_code == 1
    assert result.stdout == f"{SHARD}: truncated (2000 of {size} bytes)\n"


def test_one_flipped_byte_in_the_middle(store):
    flip_middle_byte(store.root / SHARD)
    result = verify(store.root)
    assert result.exit_code == 1
    assert result.stdout == f"{SHARD}: sha256 differs from the manifest (its bytes changed after it was published)\n"


def test_quick_skips_the_hash_so_a_flipped_byte_passes_it(store):
    flip_middle_byte(store.root / SHARD)
    assert verify(store.root, "--quick").exit_code == 0


def test_a_deleted_file(store):
    (store.root / SHARD).unlink()
    result = verify(store.root)
    assert result.exit_code == 1
    assert result.stdout == f"{SHARD}: missing\n"


def test_an_extra_file(store):
    (store.root / "data" / "v1" / "notes.txt").write_text("mine")
    result = verify(store.root)
    assert result.exit_code == 1
    assert result.stdout == "data/v1/notes.txt: not in the manifest of v1 (a stray file)\n"


def test_a_manifest_with_bad_json(store):
    path = store.root / "versions" / "v2.json"
    path.write_text(path.read_text().replace('"rows":', '"rows"', 1))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if '"rows"' in text)
    assert path.read_text().splitlines()[line - 1] == '  "rows" 2,'  # the 2 is in column 10
    result = verify(store.root)
    assert result.exit_code == 1
    assert result.stdout == f"versions/v2.json: not valid JSON: Expecting ':' delimiter at line {line}, column 10\n"


def test_a_manifest_that_is_json_but_not_a_manifest(store):
    path = store.root / "versions" / "v2.json"
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))
    result = verify(store.root, "--quick")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "versions/v2.json: not a valid manifest: files: Field required"


def test_a_missing_parent(store):
    (store.root / "versions" / "v1.json").unlink()
    for shard in (store.root / "data" / "v1").iterdir():
        shard.unlink()
    (store.root / "data" / "v1").rmdir()
    (store.root / "rejects" / "v1.parquet").unlink()
    result = verify(store.root)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "versions/v2.json: its parent v1 is missing (no versions/v1.json)",
        "README.md: config 'v1' points at data/v1/*.parquet, which matches no file",
    ]


def test_a_card_pointing_at_nothing(store):
    card = store.root / "README.md"
    card.write_text(card.read_text().replace("path: data/v1/*.parquet", "path: data/v9/*.parquet"))
    result = verify(store.root)
    assert result.exit_code == 1
    assert result.stdout == "README.md: config 'v1' points at data/v9/*.parquet, which matches no file\n"


def test_a_file_larger_than_recorded(store):
    size = (store.root / SHARD).stat().st_size
    with open(writable(store.root / SHARD), "ab") as fh:
        fh.write(b"xx")
    assert verify(store.root).stdout == f"{SHARD}: {size + 2} bytes where the manifest says {size}\n"


def test_a_file_of_the_right_size_that_is_not_parquet(store):
    size = (store.root / SHARD).stat().st_size
    writable(store.root / SHARD).write_bytes(b"x" * size)
    assert verify(store.root).stdout == f"{SHARD}: not a parquet file (no PAR1 mark at its start and end)\n"


def test_missing_and_miscounted_rejects(make_store):
    from conftest import pair_rows

    store = make_store({})
    with store.draft("v1") as draft:
        draft.write_rejects(0, [{"row_id": "r1", "stage": "answer", "reason": "empty_answer", "detail": ""}])
        draft.write_shard(0, pair_rows("a", 2))
        draft.publish()
    rejects = store.root / "rejects" / "v1.parquet"
    manifest = store.root / "versions" / "v1.json"
    manifest.write_text(manifest.read_text().replace('"rejects": 1', '"rejects": 4'))
    assert verify(store.root).stdout == "rejects/v1.parquet: 1 rows where the manifest says 4\n"
    rejects.unlink()
    assert verify(store.root).stdout == "rejects/v1.parquet: missing (the manifest counts 4 rejected rows)\n"


def test_a_data_folder_no_manifest_claims(store):
    (store.root / "data" / "v7").mkdir()
    result = verify(store.root)
    assert result.exit_code == 1
    assert result.stdout == "data/v7: a folder no manifest claims (no versions/v7.json)\n"


def test_a_publication_waiting_for_its_manifest_is_not_damage(store):
    (store.root / "data" / "v3").mkdir()
    (store.root / "data" / "v3" / "manifest.pending.json").write_text("{}")
    assert verify(store.root).exit_code == 0


def test_one_version_only_checks_that_version(store):
    (store.root / "data" / "v2" / "train-00000-of-00001.parquet").unlink()
    result = verify(f"{store.root}@v1")
    assert result.exit_code == 0 and ": 1 version, 1 data file" in result.stdout
    result = verify(f"{store.root}@v2")
    assert result.exit_code == 1 and result.stdout == "data/v2/train-00000-of-00001.parquet: missing\n"


def test_an_unknown_version_is_one_error_line(store):
    result = verify(f"{store.root}@v9")
    assert result.exit_code == 1
    assert result.stderr == f"error: unknown version 'v9' in {store.root} (versions: v1, v2)\n"


def test_every_problem_gets_its_own_line(store):
    os.truncate(writable(store.root / SHARD), 100)
    (store.root / "data" / "v2" / "train-00000-of-00001.parquet").unlink()
    lines = verify(store.root).stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [SHARD, "data/v2/train-00000-of-00001.parquet"]


def test_the_library_reports_counts_and_problems(store):
    report = verify_store(store, quick=True)
    assert (report.versions, report.files, report.rows, report.problems) == (2, 2, 5, [])


def test_large_stores_report_hashing_progress_on_stderr(store, monkeypatch):
    import prefgen.cli.data as data

    monkeypatch.setattr(data, "_PROGRESS_FROM_BYTES", 1)
    monkeypatch.setattr(data, "_PROGRESS_EVERY_S", 0.0)
    result = verify(store.root)
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("verify: hashed 0.0 of 0.0 GB (") for line in lines)
    assert lines[-1].startswith("verify: hashed 0.0 of 0.0 GB (100%, ")
    assert verify(store.root, "--quick").stderr == ""  # nothing is hashed


def test_a_folder_that_is_not_a_store_is_one_error_line(tmp_path):
    result = verify(tmp_path)
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path} is not a prefgen store (it has no versions/ folder)\n"


def test_a_manifest_from_a_newer_prefgen_is_named_as_such(store):
    path = store.root / "versions" / "v2.json"
    path.write_text(path.read_text().replace('"format": 1', '"format": 2'))
    result = verify(store.root)
    assert result.exit_code == 1
    assert result.stdout == "versions/v2.json: written by a newer prefgen (manifest format 2); upgrade prefgen\n"
