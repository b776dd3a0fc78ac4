"""What `prefgen build` shows: with --quiet the result and nothing else; without, prefgen's bars and messages (whole
lines, even when stderr is not a terminal) and, last, the log file that took transformers' output."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
VLM = ROOT / "prefgen" / "shapes" / "checkpoints" / "shapes-vlm"
PREFGEN = [sys.executable, "-m", "prefgen.cli"]

RECIPE = """\
name: console
seed: 0
source: {{type: manifest, path: questions.jsonl, image_column: image, question_column: question}}
models:
  vlm: {{path: {vlm}, dtype: float32, device: cpu}}
stages:
  - {{type: answer, output: clean_answer, max_new_tokens: 6}}
  - type: corrupt
    ops: [{{op: diffusion_noise, t: 600, space: normalized}}]
  - {{type: answer_corrupted, max_new_tokens: 6, temperature: 1.0}}
  - type: select_pairs
    chosen: clean_answer
    rejected: corrupted_answer
    method: seva
    drop_yes_no: false
    drop_rejected_in_chosen: false
    drop_duplicate_sentences: false
    max_non_alnum_fraction: 1.0
output:
  store: store
"""


@pytest.fixture
def recipe(tmp_path) -> Path:
    """A SeVa recipe on the shapes VLM over six example scenes."""
    examples = ROOT / "examples" / "shapes"
    lines = [json.loads(line) for line in (examples / "questions.jsonl").read_text().splitlines()][:6]
    for line in lines:
        shutil.copy(examples / line["image"], tmp_path / line["image"])
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(vlm=VLM))
    return path


def build(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    """`prefgen build` as a user runs it, transformers' progress bars on (the test session turns them off)."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    return subprocess.run(
        [*PREFGEN, "build", str(recipe), *args],
        cwd=recipe.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.slow
def test_quiet_prints_the_result_only_and_the_rest_goes_to_the_log(recipe, tmp_path):
    quiet = build(recipe, "-q")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert re.fullmatch(rf"published v1 in {tmp_path}/store: \d+ pairs; dropped: .*\n", quiet.stdout)
    (log,) = (tmp_path / "store" / ".prefgen" / "logs").glob("build-*.log")
    assert "Loading weights" in log.read_text()  # transformers' bar, kept out of the console

    loud = build(recipe, "--set", "seed=1")  # new rows: the model loads again
    assert loud.returncode == 0, loud.stderr
    lines = loud.stderr.splitlines()
    logs = sorted((tmp_path / "store" / ".prefgen" / "logs").glob("build-*.log"))
    assert len(logs) == 2 and lines[-1] == f"log: {logs[-1]}"
    assert [line.split()[0] for line in lines[:-1]] == [
        "source",
        "answer",
        "corrupt",
        "answer_corrupted",
        "select_pairs",
    ]
    assert "Loading weights" not in loud.stderr and "Loading weights" in logs[-1].read_text()
    assert loud.stdout.startswith(f"published v2 in {tmp_path}/store: ")

    again = build(recipe, "--set", "seed=1")
    message = "v2 was built from this recipe and these images; nothing to do (--fresh builds a new version anyway)"
    assert message in again.stderr.splitlines()  # one line, though stderr is not a terminal


def test_a_failed_build_names_its_log_under_the_error(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import prefgen.engine.runner as runner
    from prefgen.cli.main import cli
    from prefgen.core.errors import PrefgenError
    from prefgen.engine.logs import capture

    def failing(recipe_path, options):
        with capture(tmp_path / "build.log"):
            print("ERROR:root:Failed to download weights")  # what open_clip says before prefgen's own line
            raise PrefgenError("CLIP model 'ViT-L-14' is not available offline")

    monkeypatch.setattr(runner, "run_build", failing)
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "recipe.yaml"), "-q"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: CLIP model 'ViT-L-14' is not available offline",
        f"log: {tmp_path / 'build.log'}",
    ]
    assert "Failed to download weights" in (tmp_path / "build.log").read_text()
