"""`prefgen train --rounds`: the command line becomes the rounds plan (settings, evaluation) before anything runs."""

from pathlib import Path

from click.testing import CliRunner

from prefgen.cli.main import cli

ROOT = Path(__file__).parents[2]


def test_the_evaluation_scenes_and_their_seed_reach_the_round_evaluator(monkeypatch, tmp_path):
    import prefgen.eval.rounds as rounds_eval
    import prefgen.train.rounds as rounds

    seen = {}

    def fake_evaluator(specs, setting):
        seen["specs"], seen["setting"] = specs, setting
        return lambda model: {}

    monkeypatch.setattr(rounds_eval, "round_evaluator", fake_evaluator)
    monkeypatch.setattr(rounds, "run_rounds", lambda plan, on_round=None: seen.setdefault("plan", plan))
    monkeypatch.setattr(rounds, "rounds_table", lambda out: (["round"], []))
    args = ["train", "--rounds", "2", "--recipe", str(ROOT / "recipes" / "shapes-csr-best-of-k.yaml"), "--model", "m"]
    args += ["--out", str(tmp_path / "r"), "--eval", "shapes", "--eval-n", "40", "--eval-seed", "1"]
    args += ["--max-steps", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert seen["specs"] == ("shapes",) and (seen["setting"].n, seen["setting"].seed) == (40, 1)
    plan = seen["plan"]
    assert plan.rounds == 2 and plan.config.max_steps == 3 and plan.config.learning_rate == 1e-4  # the recipe's train
    assert plan.evaluate is not None and plan.out == tmp_path / "r"
