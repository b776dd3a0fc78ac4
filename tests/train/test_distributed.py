"""Data-parallel `prefgen train` in two CPU processes (`torchrun --nproc-per-node 2 -m prefgen.cli train`, the
launcher `accelerate launch --multi_gpu` uses; accelerate's own `--cpu` launch runs one process unless MPI is set up):
DPO with the ICA term gives the loss of one process over the same global batch, and the model, metrics and lineage
are written once."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # two training processes at a time: one worker with -n (tests/conftest.py ONE_WORKER)
TORCHRUN = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc-per-node", "2"]


def _config(path: Path, batch_size: int) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "max_steps": 2,
                "batch_size": batch_size,
                "ica_weight": 0.5,
                "lora": None,
                "learning_rate": 1e-3,
                "device": "cpu",
                "ica_column": "image_id",
                "ica_values": ["imgv10", "imgv12"],
            }
        )
    )
    return path


def _losses(out: Path) -> list[float]:
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [s["loss"] for s in steps if "loss" in s]


def test_two_processes_train_like_one_with_the_same_global_batch(make_store, tiny_vlm_dir, tmp_path):
    store = make_store({"v1": 4})
    model = str(tiny_vlm_dir("llava"))
    command = ["train", "--data", f"{store.root}@v1", "--model", model, "-q"]
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefgen.cli",
            *command,
            "--out",
            str(tmp_path / "one"),
            "--config",
            str(_config(tmp_path / "one.yaml", 2)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    launched = subprocess.run(
        [
            *TORCHRUN,
            "-m",
            "prefgen.cli",
            *command,
            "--out",
            str(tmp_path / "two"),
            "--config",
            str(_config(tmp_path / "two.yaml", 1)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("trained ") == 1  # the main process reports, the other only trains

    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 2
    assert two == pytest.approx(one, rel=1e-3, abs=1e-4)  # step 1: the same pairs; step 2: after the same update
    lineage = json.loads((tmp_path / "two" / "lineage.json").read_text())
    assert lineage["metrics"]["steps"] == 2 and lineage["config"]["batch_size"] == 1
    assert lineage["metrics"]["train_loss"] == pytest.approx(
        json.loads((tmp_path / "one" / "lineage.json").read_text())["metrics"]["train_loss"], rel=1e-3
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("two")) == ["two", "two.yaml"]
    assert (tmp_path / "two" / "model.safetensors").exists()


def test_rounds_in_two_processes_build_once_and_train_in_both(tiny_vlm_dir, tiny_clip_dir, tmp_path):
    """One round of the loop in two processes: the main process builds (one store version, one draft), both
    train, one lineage; the table is printed once."""
    from prefgen.store.folder import Store
    from train.test_rounds import tiny_recipe

    recipe = tiny_recipe(tmp_path, tiny_vlm_dir, tiny_clip_dir)
    result = subprocess.run(
        [
            *TORCHRUN,
            "-m",
            "prefgen.cli",
            "train",
            "--rounds",
            "1",
            "--recipe",
            str(recipe),
            "--model",
            str(tiny_vlm_dir("llava")),
            "--out",
            str(tmp_path / "loop"),
            "--config",
            str(_config(tmp_path / "c.yaml", 1)),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert Store(tmp_path / "loop" / "data").versions() == ["r1"]
    lineage = json.loads((tmp_path / "loop" / "round-1" / "model" / "lineage.json").read_text())
    assert lineage["round"] == 1 and lineage["metrics"]["steps"] == 2
    assert result.stdout.count("round") >= 1 and result.stdout.count("r1") == 1  # one table, from the main process
