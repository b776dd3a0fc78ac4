"""The command line: exit codes, one-line errors, and that the light commands stay light."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from prefgen.cli.main import cli

ROOT = Path(__file__).parents[2]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, starts):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {starts}"), result.stderr
    assert "Traceback" not in result.output


def test_validate_ok_and_failures(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "recipes" / "quickstart.yaml").read_text()
    line = text.splitlines().index("  - type: corrupt") + 1
    bad.write_text(text.replace("type: corrupt", "type: corupt"))
    # csr.yaml is written for a GPU machine: --recipe-only checks it without asking this machine for CUDA
    ok = run("validate", "--recipe-only", ROOT / "recipes" / "quickstart.yaml", ROOT / "recipes" / "csr.yaml")
    assert ok.exit_code == 0 and ok.output.count(": ok") == 2
    result = run("validate", "--recipe-only", ROOT / "recipes" / "csr.yaml", bad)
    assert result.exit_code == 1
    assert f"{bad}:{line}: stages[4].type: unknown stage type 'corupt' (did you mean 'corrupt'?)" in result.stderr
    assert result.stderr.strip().endswith("1 of 2 recipe(s) invalid")


def test_build_plan_reads_the_source_and_writes_nothing(tmp_path):
    store = ROOT / "out" / "quickstart"
    before = sorted(p.relative_to(store) for p in store.rglob("*")) if store.exists() else None
    result = run("build", ROOT / "recipes" / "quickstart.yaml", "--plan")
    assert result.exit_code == 0, result.output
    assert "image folder examples/shapes: 64 image file(s)" in result.output.replace(str(ROOT) + "/", "")
    assert "9. select_pairs" in result.output
    assert (sorted(p.relative_to(store) for p in store.rglob("*")) if store.exists() else None) == before


def test_build_with_a_missing_model_folder_is_one_line_and_writes_nothing(tmp_path):
    recipe = tmp_path / "r.yaml"
    text = (ROOT / "recipes" / "quickstart.yaml").read_text().replace("path: ../examples", f"path: {ROOT}/examples")
    recipe.write_text(
        text.replace("path: ../prefgen/shapes/checkpoints/shapes-vlm", f"path: {tmp_path}/no-such-model")
    )
    result = run("build", recipe, "--quiet")
    assert result.exit_code == 1
    assert "no-such-model" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path.parent / "out" / "quickstart").exists()  # nothing written


def test_build_of_a_bad_recipe_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert_one_line_error(
        run("build", bad, "--plan"), f"{bad}: line 1: output: missing required key 'output' (and 2 more"
    )


def test_versions_show_and_query(make_store):
    store = make_store({"v1": 3, "v2": 2})
    versions = run("versions", store.root)
    assert versions.exit_code == 0
    assert [line.split()[:3] for line in versions.output.splitlines()] == [
        ["version", "rows", "parent"],
        ["v1", "3", "-"],
        ["v2", "2", "v1"],
    ]
    shown = run("show", f"{store.root}@v1", "-n", "2")
    assert shown.exit_code == 0 and "v1: 3 rows" in shown.output
    assert "A blue square number 1." in shown.output and "number 2" not in shown.output and "PNG" not in shown.output
    queried = run("query", store.root, "SELECT id, margin FROM pairs ORDER BY id", "--format", "json")
    assert json.loads(queried.output) == [{"id": "v20", "margin": 0.0}, {"id": "v21", "margin": 0.1}]


def test_query_formats_to_files(make_store, tmp_path):
    import pyarrow.parquet as pq

    store = make_store({"v1": 2})
    csv = run("query", store.root, "SELECT id, chosen FROM pairs", "--format", "csv", "-o", tmp_path / "x.csv")
    assert csv.exit_code == 0
    assert (tmp_path / "x.csv").read_text().splitlines()[:2] == [
        "id,chosen",
        'v10,"[{""role"": ""assistant"", ""content"": ""A blue square number 0.""}]"',
    ]
    parquet = run(
        "query", store.root, "SELECT * FROM pairs", "--format", "parquet", "-o", tmp_path / "x.parquet", "--images"
    )
    assert parquet.exit_code == 0 and "images" in pq.read_schema(tmp_path / "x.parquet").names
    assert_one_line_error(run("query", store.root, "SELECT 1", "--format", "parquet"), "--format parquet needs -o")


def test_derive_through_the_cli(make_store):
    store = make_store({"v1": 4})
    result = run("derive", store.root, "--sql", "SELECT * FROM pairs WHERE margin > 0.15", "-m", "strong pairs")
    assert result.exit_code == 0 and result.output.strip() == "published v2: 2 rows (parent v1)"


@pytest.mark.parametrize(
    "args, starts",
    [
        (("versions", "{tmp}/absent"), "no store at"),
        (("versions", "{tmp}"), "{tmp} is not a prefgen store"),
        (("show", "{store}@v9"), "unknown version 'v9'"),
        (("show", "{store}@../v1"), "no store at {store}@../v1"),
        (("query", "{store}", "DROP VIEW pairs"), "the store is read-only"),
        (("derive", "{store}", "--sql", "SELECT * FROM pairs", "-m", "x", "--version", "a/b"), "invalid version name"),
        (("derive", "{store}", "--sql", "DELETE FROM pairs", "-m", "x"), "the store is read-only"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(make_store, tmp_path, args, starts):
    store = make_store({"v1": 2}, root=tmp_path / "s")
    before = sorted((p, p.stat().st_mtime_ns) for p in store.root.rglob("*") if p.name != "lock")
    fill = {"tmp": tmp_path / "empty", "store": store.root}
    (tmp_path / "empty").mkdir()
    result = run(*(a.format(**fill) for a in args))
    assert_one_line_error(result, starts.format(**fill))
    assert sorted((p, p.stat().st_mtime_ns) for p in store.root.rglob("*") if p.name != "lock") == before


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "versions", str(tmp_path / "absent")])
    assert result.exit_code == 1
    assert result.exception is not None and type(result.exception).__name__ == "StoreError"


def test_stages_lists_and_describes():
    listing = run("stages")
    assert (
        listing.exit_code == 0 and len(listing.output.splitlines()) == 13
    )  # every stage of the catalogue, one line each
    one = run("stages", "csr_search")
    assert "writes:  csr_chosen, csr_rejected" in one.output and "lam:" in one.output
    assert run("stages", "csr").exit_code == 2


@pytest.mark.parametrize("args", [["--help"], ["versions", "--help"], ["query", "STORE", "SELECT 1"]])
def test_light_commands_never_import_torch_or_transformers(make_store, args):
    store = make_store({"v1": 1})
    args = [store.root.as_posix() if a == "STORE" else a for a in args]
    code = (
        "import sys; from prefgen.cli.main import main; sys.argv = ['prefgen', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'torchvision') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stderr, out.stderr
