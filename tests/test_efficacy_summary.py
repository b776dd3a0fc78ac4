"""scripts/efficacy_summary.py: a loop's runs read back as shares of the oracle's gain, on hand-written rounds
folders whose answers are known."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from prefgen.train.lineage import RunFolder

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "efficacy_summary.py"


def load_script():
    spec = importlib.util.spec_from_file_location("efficacy_summary", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rounds_folder(
    root: Path, chair_s: list[float], qa_count: list[float], by_kind: dict | None = None, verdicts=None
) -> None:
    """A run whose round r measures chair_s[r] and qa_count[r] (round 0: the base), three rounds or as many as
    ``verdicts`` (the gate's, per round 1..; a 0 ends the loop there, as `prefgen train --rounds` does)."""
    run = RunFolder(root)

    def evaluation(r: int) -> dict:
        chair = {"chair_s": chair_s[r], "recall": 0.9 - r / 100, "well_formed": 0.8 - r / 10}
        return {"chair": chair, "qa": {"count": qa_count[r]}}

    run.write_base("base-model", evaluation(0))
    for r in range(1, 1 + len(verdicts or [1, 1, 1])):
        found = {**evaluation(r), "pairs": {"pairs": 10, "by_kind": by_kind or {}}}
        if verdicts:
            found["gate"] = {"verdict": verdicts[r - 1]}
        run.write_lineage(r, {"round": r, "data": {"rows": 10}, "eval": found})


def test_csr_share_is_the_runs_chair_gain_over_the_oracles(tmp_path):
    summarize = load_script().summarize
    rounds_folder(tmp_path / "oracle", [0.40, 0.20, 0.10, 0.00], [0.9] * 4)
    rounds_folder(tmp_path / "method", [0.40, 0.35, 0.30, 0.30], [0.9] * 4)
    rounds_folder(tmp_path / "worse", [0.40, 0.45, 0.50, 0.50], [0.9] * 4)
    summary = summarize(tmp_path, "csr")
    assert summary["metric"] == "chair.chair_s"
    assert (summary["base"], summary["oracle"], summary["method"]) == (0.40, 0.00, 0.30)
    assert summary["share_of_oracle"] == pytest.approx(0.25)
    assert summary["table"]["worse"]["share_of_oracle"] == pytest.approx(-0.25)
    assert summary["table"]["method"]["rounds"] == [0.40, 0.35, 0.30, 0.30]
    assert summary["recall_base"] == 0.9 and summary["recall_method"] == pytest.approx(0.87)
    assert summary["runs"]["oracle"] == str(tmp_path / "oracle")


def test_the_guarded_loop_is_the_method_judged_on_the_round_its_gate_kept(tmp_path):
    summarize = load_script().summarize
    rounds_folder(tmp_path / "oracle", [0.40, 0.20, 0.10, 0.00], [0.9] * 4)
    rounds_folder(tmp_path / "method", [0.40, 0.35, 0.30, 0.30], [0.9] * 4)
    rounds_folder(tmp_path / "guarded", [0.40, 0.30, 0.20, 0.35], [0.9] * 4, verdicts=[1, 1, 0])  # stopped at 3
    summary = summarize(tmp_path, "csr")
    assert summary["method_run"] == "guarded" and summary["kept_round"] == 2
    assert summary["method"] == 0.20 and summary["share_of_oracle"] == pytest.approx(0.5)
    assert summary["recall_method"] == pytest.approx(0.88)  # round 2's, not round 3's
    assert (summary["well_formed_base"], summary["well_formed_method"]) == (0.8, pytest.approx(0.6))
    assert summary["table"]["method"]["kept_round"] == 3 and summary["table"]["oracle"]["kept_round"] == 3
    rounds_folder(tmp_path / "guarded", [0.40, 0.45], [0.9] * 2, verdicts=[0])  # the gate stopped round 1
    assert summarize(tmp_path, "csr")["kept_round"] == 0  # the base kept: a share of 0


def test_sena_headline_is_the_kind_the_oracle_trained_most_and_higher_is_better(tmp_path):
    summarize = load_script().summarize
    kinds = {"count": {"pairs": 30}, "colour": {"pairs": 5}, "description": {"pairs": 50}}
    rounds_folder(tmp_path / "oracle", [0.4] * 4, [0.60, 0.70, 0.75, 0.80], kinds)
    rounds_folder(tmp_path / "method", [0.4] * 4, [0.60, 0.62, 0.66, 0.70], kinds)
    summary = summarize(tmp_path, "sena")
    assert summary["metric"] == "qa.count"  # descriptions are not a QA kind; count has the most pairs
    assert summary["share_of_oracle"] == pytest.approx(0.5)


def test_no_share_when_the_oracle_did_not_gain_and_a_clear_error_for_a_missing_run(tmp_path):
    module = load_script()
    assert module.share(0.4, 0.3, 0.45, lower_better=True) is None
    rounds_folder(tmp_path / "oracle", [0.4, 0.3, 0.2, 0.1], [0.9] * 4)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--loop", "csr"], capture_output=True, text=True
    )
    assert result.returncode == 1 and f"{tmp_path / 'method'} is a rounds folder yet" in result.stderr
    rounds_folder(tmp_path / "method", [0.4, 0.3, 0.2, 0.2], [0.9] * 4)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--loop", "csr"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["share_of_oracle"] == pytest.approx(2 / 3)


def test_efficacy_script_refuses_an_unknown_loop_or_option_before_doing_anything(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "efficacy.sh"
    for args, message in (
        (["nope", str(tmp_path / "out")], "unknown loop nope"),
        (["sena", str(tmp_path / "out"), "--fast"], "unknown option --fast"),
    ):
        result = subprocess.run(["bash", str(script), *args], capture_output=True, text=True)
        assert result.returncode == 2 and f"error: {message}" in result.stderr
        assert "usage: bash scripts/efficacy.sh csr|sena OUT" in result.stderr
    assert not (tmp_path / "out").exists()
