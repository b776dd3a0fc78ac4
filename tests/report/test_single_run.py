"""Issue 28, item 8: one `prefgen train --data` run is reported like a rounds run of one round: `prefgen report RUN`
(curves, settings, the data version it trained on) and `prefgen rounds RUN`."""

import json

from click.testing import CliRunner

from prefgen.cli.main import cli
from prefgen.recipe.training import TrainConfig
from prefgen.train.run import train


def test_report_and_rounds_read_a_single_training_run(make_store, tiny_vlm_dir, tmp_path):
    store = make_store({"v1": 4, "v2": 4})
    run = tmp_path / "run"
    train(f"{store.root}@v1", tiny_vlm_dir("llava"), run, TrainConfig(max_steps=2, batch_size=2), quiet=True)
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in step for step in steps)

    report = CliRunner().invoke(cli, ["report", str(run), "--out", str(tmp_path / "run.html")])
    assert report.exit_code == 0, report.output
    assert report.output.startswith(f"wrote the training report of {run} to {tmp_path / 'run.html'}")
    html = (tmp_path / "run.html").read_text()
    assert "<svg" in html  # the loss curve
    assert f"{store.root.resolve()}" in html and "v1" in html  # the data it trained on
    assert "beta" in html  # the settings

    table = CliRunner().invoke(cli, ["rounds", str(run)])
    assert table.exit_code == 0, table.output
    header, first = table.output.splitlines()[:2]
    assert header.split()[0] == "round" and first.split()[0] == "1"
