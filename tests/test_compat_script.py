"""scripts/compat.sh refuses a bad command line with one line and exit status 2, before it builds or writes anything;
its drivers' shared checks (scripts/compat/stored.py) fail with one line naming the row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "scripts" / "compat.sh"
USAGE = "usage: bash scripts/compat.sh OUT   (OUT: a new or empty folder for compat.json and the logs)"


def run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PREFGEN_COMPAT_HOME": str(home / "compat")}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize(
    "args, first",
    [
        ((), "error: "),
        (("--fast",), "error: unknown option --fast; "),
        (("a", "b"), "error: one folder, not 2; "),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(tmp_path, args, first):
    result = run(*args, home=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"{first}{USAGE}\n")
    assert not (tmp_path / "compat").exists()


def test_help_prints_the_usage(tmp_path):
    result = run("--help", home=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, USAGE + "\n", "")


def test_a_folder_that_is_not_empty_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = run(str(out), home=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"error: {out} exists and is not an empty folder; {USAGE}\n")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert not (tmp_path / "compat").exists()


def test_a_file_is_refused(tmp_path):
    out = tmp_path / "compat.json"
    out.write_text("{}")
    result = run(str(out), home=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"error: {out} exists and is not an empty folder; {USAGE}\n")


# ---------------------------------------------------------------------------------------------- the drivers' checks


def _driver(tmp_path: Path, check_body: str) -> subprocess.CompletedProcess:
    """A driver like scripts/compat/*_check.py whose ``check`` runs ``check_body``, on a one-row jsonl export."""
    jsonl = tmp_path / "jsonl"
    (jsonl / "images").mkdir(parents=True)
    (jsonl / "images" / "a.png").write_bytes(b"an image")
    row = {
        "id": "pair-1",
        "images": ["images/a.png"],
        "prompt": [{"role": "user", "content": "What?"}],
        "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "bad"}],
    }
    (jsonl / "data.jsonl").write_text(json.dumps(row) + "\n")
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'scripts' / 'compat')!r})\n"
        "from stored import *\n"
        "def check(export, jsonl, model, work):\n"
        "    rows = stored_rows(jsonl)\n"
        + "".join(f"    {line}\n" for line in check_body.splitlines())
        + "main(check)\n"
    )
    (tmp_path / "work").mkdir()
    args = [sys.executable, str(driver), str(tmp_path), str(jsonl), str(tmp_path), str(tmp_path / "work")]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_a_row_whose_text_changed_fails_with_one_line(tmp_path):
    result = _driver(tmp_path, "expect(rows[0], 'the chosen answer', 'goo', rows[0]['chosen'])")
    assert (result.returncode, result.stderr) == (
        1,
        "compat check failed: row pair-1: the chosen answer is 'goo', stored 'good'\n",
    )
    assert not (tmp_path / "work" / "result.json").exists()


def test_an_example_without_its_image_fails(tmp_path):
    body = "return {'version': '1', 'rows': 1, 'examples': 1, 'images': 0, 'loss_first': 0.7, 'loss_last': 0.6}"
    result = _driver(tmp_path, body)
    assert (result.returncode, result.stderr) == (
        1,
        "compat check failed: 0 examples carried their images, 1 rows have images\n",
    )


def test_a_dropped_row_fails(tmp_path):
    body = "return {'version': '1', 'rows': 1, 'examples': 0, 'images': 0, 'loss_first': 0.7, 'loss_last': 0.6}"
    result = _driver(tmp_path, body)
    assert (result.returncode, result.stderr) == (1, "compat check failed: the trainer kept 0 of the 1 rows\n")


def test_a_loss_that_is_not_finite_fails(tmp_path):
    log = tmp_path / "logging.jsonl"
    log.write_text('{"loss": 0.69}\n{"loss": NaN}\n')
    result = _driver(tmp_path, f"losses(Path({str(log)!r}))")
    assert result.returncode == 1
    assert result.stderr == f"compat check failed: the losses in {log} are [0.69, nan], not finite numbers\n"


def test_a_passing_check_writes_its_result(tmp_path):
    body = (
        "assert rows[0]['images'] == [sha256(jsonl / 'images' / 'a.png')]\n"
        "return {'version': '1', 'rows': 1, 'examples': 1, 'images': 1, 'loss_first': 0.7, 'loss_last': 0.6}"
    )
    result = _driver(tmp_path, body)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "work" / "result.json").read_text()) == {
        "version": "1",
        "rows": 1,
        "examples": 1,
        "images": 1,
        "loss_first": 0.7,
        "loss_last": 0.6,
    }
