"""Every command that reads a version stops on a damaged file with one line naming it: never DuckDB's or Arrow's
message, never a traceback, never a half-written output."""

from __future__ import annotations

import os
import threading

import pytest
from click.testing import CliRunner
from conftest import pair_rows

from prefgen.cli.main import cli
from prefgen.core.errors import StoreError
from prefgen.store.folder import Store
from prefgen.store.query import run_query

SHARD = "data/v1/train-00000-of-00001.parquet"


def damage(store, kind: str) -> str:
    """Damage v1's data file; returns what the error line says about it."""
    path = store.root / SHARD
    size = path.stat().st_size
    path.chmod(0o644)
    if kind == "truncated":
        os.truncate(path, 2000)
        return f"truncated (2000 of {size} bytes)"
    if kind == "missing":
        path.unlink()
        return "missing"
    path.write_bytes(b"\0" * size)
    return "not a parquet file (no PAR1 mark at its start and end)"


def expected_line(store, what: str) -> str:
    return f"error: version v1 is damaged: {SHARD}: {what}; run `prefgen verify {store.root}`\n"


COMMANDS = {
    "show": lambda root, tmp: ["show", f"{root}@v1"],
    "query": lambda root, tmp: ["query", root, 'SELECT count(*) FROM "v1"'],
    "query pairs": lambda root, tmp: ["query", root, "SELECT count(*) FROM pairs"],
    "query all_pairs": lambda root, tmp: ["query", root, "SELECT count(*) FROM all_pairs"],
    "export": lambda root, tmp: ["export", root, "--format", "llava", "--out", tmp / "export"],
    "derive": lambda root, tmp: ["derive", root, "--sql", "SELECT * FROM pairs", "-m", "again"],
    "report": lambda root, tmp: ["report", root, "-o", tmp / "report.html"],
}


@pytest.mark.parametrize("kind", ["truncated", "missing", "not parquet"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_damaged_file_stops_every_reader_with_one_line(make_store, tmp_path, command, kind):
    store = make_store({"v1": 3})
    what = damage(store, kind)
    result = CliRunner().invoke(cli, [str(a) for a in COMMANDS[command](store.root, tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == expected_line(store, what)
    assert result.stdout == ""  # show prints no header before the error
    assert Store(store.root).versions() == ["v1"]  # derive published nothing
    assert not (tmp_path / "export").exists() and not (tmp_path / "report.html").exists()


def test_train_on_a_damaged_version_stops_before_any_model_loads(make_store, tmp_path, tiny_vlm_dir):
    store = make_store({"v1": 3})
    what = damage(store, "truncated")
    result = CliRunner().invoke(
        cli, ["train", "--data", str(store.root), "--model", str(tiny_vlm_dir("llava")), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 1
    assert result.stderr == expected_line(store, what)
    assert not (tmp_path / "m").exists()


def test_a_damaged_version_does_not_keep_the_others_from_being_queried(make_store):
    store = make_store({"v1": 3, "v2": 2})
    damage(store, "truncated")
    assert run_query(store, "SELECT count(*) AS n FROM pairs").column("n").to_pylist() == [2]
    with pytest.raises(StoreError, match="version v1 is damaged"):
        run_query(store, 'SELECT * FROM "v1"')


def test_versions_lists_and_warns_about_damage(make_store):
    store = make_store({"v1": 3, "v2": 2})
    what = damage(store, "missing")
    result = CliRunner().invoke(cli, ["versions", str(store.root)])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["version", "v1", "v2"]
    assert result.stderr == "warning: " + expected_line(store, what).removeprefix("error: ")


def test_a_damaged_rejects_file_stops_only_queries_of_rejects(make_store):
    store = make_store({"v1": 3})
    (store.root / "rejects" / "v1.parquet").write_bytes(b"not parquet")
    assert run_query(store, "SELECT count(*) AS n FROM pairs").column("n").to_pylist() == [3]
    with pytest.raises(StoreError) as info:
        run_query(store, "SELECT * FROM rejects")
    assert str(info.value) == (
        "version v1 is damaged: rejects/v1.parquet: not a parquet file (no PAR1 mark at its start and end); "
        f"run `prefgen verify {store.root}`"
    )


def test_a_bad_manifest_is_one_line_for_every_reader(make_store):
    store = make_store({"v1": 3})
    (store.root / "versions" / "v1.json").write_text('{"version": "v1",}')
    result = CliRunner().invoke(cli, ["query", str(store.root), "SELECT 1"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: corrupt manifest versions/v1.json: not valid JSON: Expecting property name enclosed in double quotes "
        f"at line 1, column 18; run `prefgen verify {store.root}`\n"
    )


# ---------------------------------------------------------------------------------------------- all_pairs, errors


def test_all_pairs_has_every_versions_rows_and_a_version_column(make_store):
    store = make_store({"v1": 3, "v2": 2})
    table = run_query(store, "SELECT version, id FROM all_pairs ORDER BY version, id")
    assert table.column_names == ["version", "id"]
    assert table.to_pylist() == [
        {"version": "v1", "id": "v10"},
        {"version": "v1", "id": "v11"},
        {"version": "v1", "id": "v12"},
        {"version": "v2", "id": "v20"},
        {"version": "v2", "id": "v21"},
    ]


def test_all_pairs_joins_versions_with_different_columns(make_store):
    store = make_store({"v1": 2})
    with store.draft("v2") as draft:
        draft.write_shard(0, [{**row, "note": "new"} for row in pair_rows("b", 1)])
        draft.publish()
    rows = run_query(store, "SELECT version, note FROM all_pairs ORDER BY version").to_pylist()
    assert rows == [{"version": "v1", "note": None}, {"version": "v1", "note": None}, {"version": "v2", "note": "new"}]


@pytest.mark.parametrize(
    ("sql", "lines"),
    [
        (
            "SELECT * FROM pair",
            ["error: query failed: Catalog Error: Table with name pair does not exist!", 'Did you mean "pairs"?'],
        ),
        (
            "SELECT margn FROM pairs",
            [
                'error: query failed: Binder Error: Referenced column "margn" not found in FROM clause!',
                'Candidate bindings: "margin"',
            ],
        ),
        (
            "SELEC 1",
            ['error: bad SQL: Parser Error: syntax error at or near "SELEC"', "LINE 1: SELEC 1", "        ^^^^^"],
        ),
    ],
)
def test_duckdb_errors_keep_their_hints_and_position_marker(make_store, sql, lines):
    store = make_store({"v1": 1})
    result = CliRunner().invoke(cli, ["query", str(store.root), sql])
    assert result.exit_code == 1
    got = result.stderr.splitlines()
    assert got[: len(lines) - 1] == lines[:-1] and got[len(lines) - 1].startswith(lines[-1])
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------- readers and writers


def test_readers_during_publishes_see_whole_version_lists(make_store):
    store = make_store({"v1": 1})
    seen, errors, done = [], [], threading.Event()

    def reader():
        while not done.is_set():
            try:
                reading = Store(store.root)
                versions = reading.versions()
                for version in versions:
                    reading.data_files(version)  # a listed version's data is there, whole
                seen.append(tuple(versions))
            except Exception as exc:  # any failure is what the test looks for
                errors.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(2, 12):
            with store.draft(f"v{n}") as draft:
                draft.write_shard(0, pair_rows(f"v{n}", 2))
                draft.publish()
    finally:
        done.set()
        thread.join()
    assert errors == []
    expected = [tuple(f"v{i}" for i in range(1, n + 1)) for n in range(1, 12)]
    assert len(seen) > 10 and set(seen) <= set(expected)
    assert seen == sorted(seen, key=len)  # never a version that vanishes again


def scramble_pages(store) -> None:
    """Flip bytes all through the data pages, leaving the size and the footer as they were."""
    path = store.root / SHARD
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for i in range(8, len(data) - footer, 37):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damage_the_cheap_checks_miss_is_named_when_the_read_fails(make_store, tmp_path):
    store = make_store({"v1": 40})
    scramble_pages(store)
    line = expected_line(store, "sha256 differs from the manifest (its bytes changed after it was published)")
    query = CliRunner().invoke(cli, ["query", str(store.root), "SELECT sum(length(question)) FROM pairs"])
    assert (query.exit_code, query.stderr) == (1, line)
    export = CliRunner().invoke(cli, ["export", str(store.root), "--format", "seva", "--out", str(tmp_path / "x")])
    assert (export.exit_code, export.stderr) == (1, line)
    assert not (tmp_path / "x").exists()
