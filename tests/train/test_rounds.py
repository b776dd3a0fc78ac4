"""`prefgen train`: one run with its lineage, LoRA targets per family, and the rounds loop (resume, lineage, table)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from prefgen.cli.main import cli
from prefgen.recipe.training import TrainConfig
from prefgen.store.folder import Store
from prefgen.train.rounds import RoundsPlan, rounds_table, run_rounds
from prefgen.train.run import train

ROOT = Path(__file__).parents[2]
FAMILIES = ("llava", "qwen2_vl", "qwen2_5_vl", "idefics3", "smolvlm")


def tiny_recipe(tmp_path, tiny_vlm_dir, tiny_clip_dir, name="seva") -> Path:
    text = (ROOT / "recipes" / "tiny" / f"{name}.yaml").read_text()
    text = text.replace("../../build/tiny/llava", str(tiny_vlm_dir("llava")))
    text = text.replace("../../build/tiny/clip", str(tiny_clip_dir)).replace("../../examples", str(ROOT / "examples"))
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("../../out/", f"{tmp_path}/out/"))
    return path


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_targets_are_the_language_models_projections(family, tiny_vlm_dir):
    from transformers import AutoModelForImageTextToText

    from prefgen.train.lora import lora_targets

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir(family))
    targets = lora_targets(model, ["q_proj", "v_proj", "down_proj"])
    assert targets and all(t.rsplit(".", 1)[-1] in {"q_proj", "v_proj", "down_proj"} for t in targets)
    assert not any(word in t for t in targets for word in ("vision", "visual", "projector", "lm_head", "connector"))
    layers = model.get_decoder().config.num_hidden_layers
    assert len(targets) == 3 * layers


def test_one_run_writes_a_plain_model_with_metrics_and_lineage(make_store, tiny_vlm_dir, tmp_path, capfd):
    from transformers import AutoModelForImageTextToText

    store = make_store({"v1": 4, "v2": 4})
    capfd.readouterr()
    lineage = train(
        f"{store.root}@v1", tiny_vlm_dir("llava"), tmp_path / "m", TrainConfig(max_steps=2, batch_size=2), quiet=True
    )
    assert "'loss'" not in capfd.readouterr().out  # quiet: the per-step logs go to metrics.jsonl only
    out = tmp_path / "m"
    assert json.loads((out / "lineage.json").read_text()) == lineage
    assert lineage["data"]["version"] == "v1" and lineage["data"]["rows"] == 4
    assert lineage["parent_model"] == str(tiny_vlm_dir("llava")) and lineage["metrics"]["steps"] == 2
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if "loss" in s] == [1, 2] and all("rewards/margins" in s for s in steps[:2])
    margins = [s["rewards/margins"] for s in steps if "rewards/margins" in s]
    assert lineage["metrics"]["rewards/margins"] == pytest.approx(sum(margins) / 2)  # the run's mean, as train_loss
    model = AutoModelForImageTextToText.from_pretrained(out)  # LoRA merged: a plain model, no adapter files
    assert not (out / "adapter_config.json").exists() and model is not None
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_training_into_a_trained_folder_is_refused(make_store, tiny_vlm_dir, tmp_path):
    store = make_store({"v1": 2})
    config = TrainConfig(max_steps=1, batch_size=2)
    train(f"{store.root}", tiny_vlm_dir("llava"), tmp_path / "m", config, quiet=True)
    result = CliRunner().invoke(
        cli, ["train", "--data", str(store.root), "--model", str(tiny_vlm_dir("llava")), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 1 and "already holds a trained model" in result.stderr


@pytest.mark.slow
def test_rounds_build_train_evaluate_and_resume_after_a_crash(tmp_path, tiny_vlm_dir, tiny_clip_dir, monkeypatch):
    recipe = tiny_recipe(tmp_path, tiny_vlm_dir, tiny_clip_dir)
    config = TrainConfig(max_steps=1, batch_size=2)
    evaluated = []

    def evaluate(model_dir):
        evaluated.append(Path(model_dir).name if Path(model_dir).name != "model" else Path(model_dir).parent.name)
        return {"chair": {"chair_s": 0.5 - 0.1 * len(evaluated)}}

    import prefgen.train.rounds as rounds_module

    real_train = rounds_module.train
    calls = {"n": 0}

    def crash_in_round_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("power cut")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(rounds_module, "train", crash_in_round_two)
    with pytest.raises(RuntimeError, match="power cut"):
        run_rounds(
            RoundsPlan(recipe, tiny_vlm_dir("llava"), tmp_path / "loop", 2, config, evaluate=evaluate, quiet=True)
        )
    assert Store(tmp_path / "loop" / "data").versions() == ["r1", "r2"]  # round 2's data was built before the crash
    monkeypatch.setattr(rounds_module, "train", real_train)
    seen, judged = [], []

    def judge(ref):
        judged.append(ref)
        return {"accuracy": 0.75}

    plan = RoundsPlan(
        recipe, tiny_vlm_dir("llava"), tmp_path / "loop", 2, config, evaluate=evaluate, judge_pairs=judge, quiet=True
    )
    lineages = run_rounds(plan, on_round=lambda r, stage: seen.append((r, stage)))
    assert judged == [f"{tmp_path / 'loop' / 'data'}@r2"]  # round 1 was evaluated (without a judge) before
    assert seen == [(2, "train"), (2, "eval")]  # round 1 and round 2's build were not redone
    assert evaluated == [tiny_vlm_dir("llava").name, "round-1", "round-2"]
    one, two = lineages
    assert one["parent_model"] == str(tiny_vlm_dir("llava")) and one["data"]["version"] == "r1"
    assert two["parent_model"] == str(tmp_path / "loop" / "round-1" / "model") and two["data"]["version"] == "r2"
    store = Store(tmp_path / "loop" / "data")
    assert store.manifest("r2").round == 2
    assert store.manifest("r2").models["vlm"].path == str((tmp_path / "loop" / "round-1" / "model").resolve())
    assert two["data"]["model"] == store.manifest("r2").models["vlm"].path
    assert set(one["seconds"]) == {"build", "train", "eval"} and min(one["seconds"].values()) >= 0
    assert set(two["seconds"]) == {"train", "eval"}  # round 2's build was done by the crashed run
    header, rows = rounds_table(tmp_path / "loop")
    assert header[:5] == ["round", "data", "pairs", "loss", "reward acc"] and "chair.chair_s" in header
    assert two["eval"]["pairs"] == {"accuracy": 0.75} and "pairs" not in one["eval"]
    assert rows[2][header.index("pairs.accuracy")] == "0.75" and rows[1][header.index("pairs.accuracy")] == "-"
    assert [r[0] for r in rows] == ["0", "1", "2"] and rows[2][1] == "r2"
    result = CliRunner().invoke(cli, ["rounds", str(tmp_path / "loop")])
    assert result.exit_code == 0 and "chair.chair_s" in result.output


def test_train_cli_needs_data_or_rounds_with_a_recipe(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--model", "m", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "give --data for one training run" in result.output
    result = CliRunner().invoke(cli, ["train", "--rounds", "2", "--model", "m", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--rounds needs --recipe" in result.output


def test_a_bad_training_config_is_one_line(tmp_path):
    config = tmp_path / "t.yaml"
    config.write_text("beta: -1\n")
    result = CliRunner().invoke(
        cli, ["train", "--data", "s", "--model", "m", "--out", str(tmp_path / "o"), "--config", str(config)]
    )
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {config}: beta: Input should be greater")


def shapes_recipe(tmp_path, name: str, scenes: int) -> Path:
    """A shipped shapes recipe pointed at ``scenes`` fresh train-split scenes (seed 1) and at the shipped models."""
    from prefgen.shapes.world import write_scene_folder

    write_scene_folder(tmp_path / "scenes", scenes, seed=1, split="train")
    text = (ROOT / "recipes" / f"{name}.yaml").read_text()
    text = text.replace("../data/shapes-train", str(tmp_path / "scenes"))
    text = text.replace("../prefgen/shapes/checkpoints", str(ROOT / "prefgen" / "shapes" / "checkpoints"))
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("../out/", f"{tmp_path}/out/"))
    return path


def one_shapes_round(tmp_path, name: str, scenes: int = 8, *extra: str):
    """`prefgen train --rounds 1 --eval shapes` of a shipped shapes recipe, reduced (4 evaluation scenes, 1 step),
    with the libraries' progress bars on, as a user has them (the test session turns them off)."""
    from transformers.utils.logging import disable_progress_bar, enable_progress_bar

    enable_progress_bar()
    try:
        result = _invoke_one_round(tmp_path, name, scenes, *extra)
    finally:
        disable_progress_bar()
    assert result.exit_code == 0, result.output
    base = json.loads((tmp_path / "loop" / "round-0.json").read_text())["eval"]
    lineage = json.loads((tmp_path / "loop" / "round-1" / "model" / "lineage.json").read_text())
    return result, base, lineage


def _invoke_one_round(tmp_path, name: str, scenes: int, *extra: str):
    return CliRunner().invoke(
        cli,
        [
            "train",
            "--rounds",
            "1",
            "--recipe",
            str(shapes_recipe(tmp_path, name, scenes)),
            "--model",
            str(ROOT / "prefgen" / "shapes" / "checkpoints" / "shapes-vlm"),
            "--out",
            str(tmp_path / "loop"),
            "--eval",
            "shapes",
            "--eval-n",
            "4",
            "--max-steps",
            "1",
            "--quiet",
            *extra,
        ],
    )


def rows_of(store, version: str | None = None) -> list[dict]:
    import pyarrow.parquet as pq

    return [row for path in Store(store).data_files(version) for row in pq.read_table(path).to_pylist()]


def assert_judged(lineage: dict) -> dict:
    judged = lineage["eval"]["pairs"]
    assert judged["pairs"] == lineage["data"]["rows"] > 0
    assert judged["better"] + judged["tie"] + judged["worse"] == judged["pairs"]
    return judged


@pytest.mark.slow
def test_shapes_round_end_to_end_with_the_real_evaluation_and_pair_judge(tmp_path):
    """`prefgen train --rounds 1 --eval shapes` on the shipped shapes models with the best-of-k CSR recipe: build,
    train, CHAIR + POPE + QA, and the version's pairs judged against the scenes' ground truth."""
    result, base, lineage = one_shapes_round(tmp_path, "shapes-csr-best-of-k")
    # quiet: the steps of the loop and nothing else on stderr; the models' "Loading weights" bars are in the logs
    assert result.stderr.splitlines() == ["round 0: eval", "round 1: build", "round 1: train", "round 1: eval"]
    assert "Loading weights" in (tmp_path / "loop" / "logs" / "eval-0.log").read_text()
    assert base["chair"]["captions"] == lineage["eval"]["chair"]["captions"] == 4
    assert set(lineage["eval"]["pope"]) == {"random", "popular", "adversarial"} and "pairs" not in base
    assert set(base["qa"]) == {"colour", "shape", "count", "all", "questions"} and base["qa"]["questions"] >= 4
    assert_judged(lineage)
    assert "pairs.accuracy" in result.output and "chair.chair_s" in result.output and "qa.all" in result.output
    assert "pope.adversarial.f1" in result.output and "chair.captions" not in result.output  # the key columns
    every = CliRunner().invoke(cli, ["rounds", str(tmp_path / "loop"), "--all"])
    assert every.exit_code == 0 and "chair.captions" in every.output and "pope.random.yes_ratio" in every.output


@pytest.mark.slow
def test_csr_search_recipe_one_round_end_to_end(tmp_path):
    """recipes/shapes-csr.yaml (CSR's sentence-level search with its guards) for one reduced round: its pairs are the
    search's best and worst paths, with the per-sentence steps kept, and they are judged by ground truth."""
    _, _, lineage = one_shapes_round(tmp_path, "shapes-csr", 16)  # a third of the scenes give a pair
    assert_judged(lineage)
    store, version = lineage["data"]["store"], lineage["data"]["version"]
    rows = rows_of(store, version)
    assert {r["method"] for r in rows} == {"csr"}
    for r in rows:
        assert r["chosen"][-1]["content"] == r["csr_chosen"] != r["csr_rejected"] == r["rejected"][-1]["content"]
        assert r["csr_chosen_reward"] > r["csr_rejected_reward"]
        assert " ".join(step["text"] for step in r["csr_chosen_steps"]) == r["csr_chosen"]


@pytest.mark.slow
def test_sena_recipe_one_round_end_to_end_with_ica(tmp_path):
    """recipes/shapes-sena.yaml for one reduced round: question and description pairs, ICA on the description rows
    (its loss term is logged), pairs judged per kind; the oracle control writes ground-truth chosen answers."""
    _, _, lineage = one_shapes_round(tmp_path, "shapes-sena")
    assert lineage["config"]["ica_weight"] == 1.0
    judged = assert_judged(lineage)
    rows = rows_of(lineage["data"]["store"], lineage["data"]["version"])
    assert {r["method"] for r in rows} == {"sena"} and "description" in {r["question_source"] for r in rows}
    metrics = [json.loads(line) for line in (tmp_path / "loop" / "round-1" / "model" / "metrics.jsonl").open()]
    assert any(m.get("loss/ica", 0) > 0 for m in metrics), metrics
    assert judged["pairs"] == len(rows)
    # label-free: which way the rejected answers' numbers err, from the pairs' texts alone
    from prefgen.stages.pair_text import count_direction

    found = [count_direction(r["chosen"][-1]["content"], r["rejected"][-1]["content"]) for r in rows]
    found = [d for d in found if d is not None]
    directions = lineage["eval"]["directions"]
    assert directions["count_pairs"] == len(found)
    assert directions["bias"] == pytest.approx((found.count(1) - found.count(-1)) / max(len(found), 1))

    oracle = tmp_path / "oracle"
    result = CliRunner().invoke(
        cli,
        [
            "build",
            str(shapes_recipe(oracle, "shapes-sena", 8)),
            "--quiet",
            "--set",
            "stages.select_pairs.chosen=oracle_answer",
        ],
    )
    assert result.exit_code == 0, result.output
    for r in rows_of(oracle / "out" / "shapes-sena"):
        assert r["chosen"][-1]["content"] == r["oracle_answer"]
        if r["question_source"] == "description":
            assert r["oracle_answer_known"] and r["oracle_answer"].startswith(("a ", "an ", "two ", "three "))


def fake_run(folder: Path, chair_s: list[float], accuracy: list[float | None]) -> Path:
    """A rounds folder as `train --rounds` leaves it: round-0.json and a lineage per finished round."""
    from prefgen.train.lineage import LINEAGE

    folder.mkdir(parents=True)
    (folder / "round-0.json").write_text(json.dumps({"eval": {"chair": {"chair_s": chair_s[0]}}}))
    for r in range(1, len(chair_s)):
        model = folder / f"round-{r}" / "model"
        model.mkdir(parents=True)
        evals = {"chair": {"chair_s": chair_s[r]}, **({"pairs": {"accuracy": accuracy[r]}} if accuracy[r] else {})}
        evals["qa"] = {"colour": 0.9, "count": 0.8 + 0.01 * r}
        (model / LINEAGE).write_text(
            json.dumps(
                {
                    "data": {"version": f"r{r}", "rows": 10 * r},
                    "metrics": {"train_loss": 0.5, "rewards/accuracies": 0.75},
                    "seconds": {"build": 60.0, "train": 30.0, "eval": 30.0},
                    "eval": evals,
                }
            )
        )
    return folder


def test_rounds_of_several_runs_side_by_side_as_table_json_and_csv(tmp_path):
    csr = fake_run(tmp_path / "csr", [0.4, 0.3, 0.2], [None, 0.8, 0.7])
    oracle = fake_run(tmp_path / "oracle", [0.4, 0.25], [None, 0.9])
    result = CliRunner().invoke(cli, ["rounds", str(csr), str(oracle), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(row["run"], row["round"]) for row in rows] == [
        (str(csr), 0),
        (str(csr), 1),
        (str(csr), 2),
        (str(oracle), 0),
        (str(oracle), 1),
    ]
    assert [row["chair.chair_s"] for row in rows] == [0.4, 0.3, 0.2, 0.4, 0.25]
    assert rows[0]["pairs.accuracy"] is None and rows[4]["pairs.accuracy"] == 0.9 and rows[2]["pairs"] == 20
    out = tmp_path / "rounds.csv"
    assert CliRunner().invoke(cli, ["rounds", str(csr), str(oracle), "--format", "csv", "-o", str(out)]).exit_code == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("run,round,data,pairs,loss,reward acc,minutes,chair.chair_s") and len(lines) == 6
    assert lines[2].split(",")[6] == "2.0"  # build + train + evaluation of round 1, in minutes
    table = CliRunner().invoke(cli, ["rounds", str(csr)])
    assert table.exit_code == 0 and "run" not in table.output.split()[:1] and "0.2" in table.output
    missing = CliRunner().invoke(cli, ["rounds", str(csr), str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "is not a rounds folder" in missing.output


def test_rounds_metrics_chosen_by_pattern_as_a_markdown_table(tmp_path):
    csr = fake_run(tmp_path / "csr", [0.4, 0.3], [None, 0.8])
    result = CliRunner().invoke(
        cli, ["rounds", str(csr), "--metric", "qa.*", "--metric", "chair.chair_s", "--format", "markdown"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "| round | data | pairs | loss | reward acc | minutes | qa.colour | qa.count | chair.chair_s |"
    assert lines[1] == "|" + "---|" * 9
    assert lines[2] == "| 0 | base | - | - | - | - | - | - | 0.4 |"
    assert lines[3] == "| 1 | r1 | 10 | 0.5 | 0.75 | 2 | 0.9 | 0.81 | 0.3 |"  # 4 significant digits
    unknown = CliRunner().invoke(cli, ["rounds", str(csr), "--metric", "pope.*"])
    assert unknown.exit_code == 1
    assert unknown.output.startswith("error: no recorded metric matches pope.*; the runs record: chair.chair_s,")
