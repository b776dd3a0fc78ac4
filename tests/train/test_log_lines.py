"""What `prefgen train` prints: trl's logs as lines of numbers (never `'loss': '0.6931'`), and transformers' own
output (the "Loading weights" bar) in the run's log file, not on the console."""

import json

from prefgen.recipe.training import TrainConfig
from prefgen.train.run import train
from prefgen.train.trainer import log_line


def test_a_log_entry_is_a_line_of_numbers():
    logs = {"loss": 0.693147, "grad_norm": 1.25, "learning_rate": 5e-06, "rewards/accuracies": 0.5, "epoch": 0.25}
    assert log_line(3, 8, {**logs, "total_flos": 12.0}) == (
        "step 3/8: loss 0.6931, grad_norm 1.25, learning_rate 5e-06, rewards/accuracies 0.5, epoch 0.25"
    )


def test_training_prints_numbers_and_logs_the_libraries_output(make_store, tiny_vlm_dir, tmp_path, capfd):
    from transformers.utils.logging import disable_progress_bar, enable_progress_bar

    store = make_store({"v1": 4})
    capfd.readouterr()
    enable_progress_bar()  # as a user has them (the test session turns them off)
    try:
        train(f"{store.root}@v1", tiny_vlm_dir("llava"), tmp_path / "m", TrainConfig(max_steps=2, batch_size=2))
    finally:
        disable_progress_bar()
    out, err = capfd.readouterr()
    steps = [line for line in (out + err).splitlines() if line.startswith("step ")]
    assert [line.split(": ")[0] for line in steps] == ["step 1/2", "step 2/2", "step 2/2"]  # two steps, the summary
    assert [line.split(": ")[1].split(", ")[0] for line in steps[:2]] == [
        f"loss {entry['loss']:.4g}"
        for entry in map(json.loads, (tmp_path / "m" / "metrics.jsonl").open())
        if "loss" in entry
    ]
    assert "'loss': '" not in out + err and "Loading weights" not in out + err
    assert "Loading weights" in (tmp_path / "m" / "train.log").read_text()


def test_the_train_command_names_its_log_last(make_store, tiny_vlm_dir, tmp_path):
    from click.testing import CliRunner
    from transformers.utils.logging import disable_progress_bar, enable_progress_bar

    from prefgen.cli.main import cli

    store = make_store({"v1": 4})
    out = tmp_path / "m"
    args = ["train", "--data", str(store.root), "--model", str(tiny_vlm_dir("llava")), "--out", str(out)]
    enable_progress_bar()
    try:
        result = CliRunner().invoke(cli, [*args, "--max-steps", "2"])
    finally:
        disable_progress_bar()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"trained {out}: 4 pairs, loss 0.69") and result.stdout.count("\n") == 1
    assert result.stderr.splitlines()[-1] == f"log: {out / 'train.log'}"
