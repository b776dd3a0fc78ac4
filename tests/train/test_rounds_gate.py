"""The round gate in `train --rounds`: a recorded "stop" ends the loop (a rerun too), and `prefgen rounds` shows
each round's signals and verdict."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import prefgen.train.rounds as rounds_module
from prefgen.cli.main import cli
from prefgen.recipe.training import TrainConfig
from prefgen.train.lineage import LINEAGE
from prefgen.train.rounds import RoundsPlan, rounds_records, run_rounds


def gated_run(folder: Path, verdicts: list[int]) -> Path:
    """A rounds folder whose rounds 1..N were trained and evaluated, the gate's verdict of each given."""
    folder.mkdir(parents=True)
    gate = {"repeated_words": 0.0, "length_drift": 0.0, "base_logprob_drop": 0.0, "verdict": 1}
    (folder / "round-0.json").write_text(json.dumps({"eval": {"gate": gate}}))
    for r, verdict in enumerate(verdicts, start=1):
        model = folder / f"round-{r}" / "model"
        model.mkdir(parents=True)
        drift = {**gate, "repeated_words": 0.25 * r, "length_drift": -0.1 * r, "verdict": verdict}
        lineage = {"data": {"version": f"r{r}", "rows": 10}, "metrics": {}, "eval": {"gate": drift}}
        (model / LINEAGE).write_text(json.dumps(lineage))
    return folder


def test_a_round_the_gate_stops_is_the_last(tmp_path, monkeypatch):
    folder = gated_run(tmp_path / "loop", [1, 0])
    monkeypatch.setattr(rounds_module, "train", lambda *a, **k: pytest.fail("round 3 must not be trained"))
    heard = []
    plan = RoundsPlan(tmp_path / "recipe.yaml", tmp_path / "base", folder, 3, TrainConfig(), evaluate=lambda m: {})
    lineages = run_rounds(plan, on_round=lambda r, stage: heard.append((r, stage)))
    assert [lin["data"]["version"] for lin in lineages] == ["r1", "r2"]
    assert heard == [(2, "gate: stop (the loop keeps the model of round 1)")]


def test_rounds_shows_the_gate_signals_and_verdict_by_default(tmp_path):
    folder = gated_run(tmp_path / "loop", [1, 0])
    header, rows = rounds_records([folder])
    assert header[-4:] == ["gate.repeated_words", "gate.length_drift", "gate.base_logprob_drop", "gate.verdict"]
    assert [row[-4:] for row in rows] == [[0.0, 0.0, 0.0, 1], [0.25, -0.1, 0.0, 1], [0.5, -0.2, 0.0, 0]]
    result = CliRunner().invoke(cli, ["rounds", str(folder)])
    assert result.exit_code == 0 and "gate.verdict" in result.output
