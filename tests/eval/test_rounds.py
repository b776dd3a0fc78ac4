"""The round evaluators of `prefgen train --rounds --eval`: the spec parser, and real-data POPE and CHAIR measured on
the shipped shapes VLM (a real model, on the hand-made COCO world of conftest.py)."""

from pathlib import Path

import pytest

import prefgen.shapes
from prefgen.core.errors import PrefgenError
from prefgen.eval.rounds import KINDS, Setting, parse_spec, round_evaluator, split_name

SHAPES_VLM = Path(prefgen.shapes.__file__).parent / "checkpoints" / "shapes-vlm"


def test_parse_spec_reads_kinds_keys_and_lists():
    assert parse_spec("shapes") == ("shapes", {})
    assert parse_spec("pope:questions=a.jsonl+b.jsonl,images=val2014,limit=3") == (
        "pope",
        {"questions": ("a.jsonl", "b.jsonl"), "images": "val2014", "limit": "3"},
    )
    assert parse_spec("chair:instances=i.json,images=imgs,prompt=Describe this image.")[1]["prompt"] == (
        "Describe this image."
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "mme",
            "--eval mme: unknown kind 'mme'; use one of shapes, shapes-chair, shapes-pope, shapes-qa, pope, chair",
        ),
        ("pope:images=x", "--eval pope:images=x: pope needs questions=..."),
        (
            "pope:questions=q,images=x,colour=red",
            "'colour=red' is not KEY=VALUE with a key of pope (questions, images",
        ),
        ("chair:instances", "'instances' is not KEY=VALUE with a key of chair"),
        ("shapes:n=4", "'n=4' is not KEY=VALUE with a key of shapes (none)"),
    ],
)
def test_bad_specs_fail_in_one_line(spec, message):
    with pytest.raises(PrefgenError) as caught:
        parse_spec(spec)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_two_specs_that_record_the_same_group_are_refused(pope_files, coco):
    questions = pope_files[0]
    with pytest.raises(PrefgenError, match=r"--eval shapes and --eval pope:.* both record pope\.\*: keep one"):
        round_evaluator(["shapes", f"pope:questions={questions},images={coco / 'images'}"])
    with pytest.raises(PrefgenError, match="limit must be an integer, not 'all'"):
        round_evaluator([f"pope:questions={questions},images={coco / 'images'},limit=all"])
    with pytest.raises(PrefgenError, match="cannot read"):  # files are read when parsed, before any training
        round_evaluator([f"pope:questions={coco / 'nothing.jsonl'},images={coco / 'images'}"])


def test_split_names():
    assert [split_name(s) for s in ("coco_pope_random", "aokvqa_pope_adversarial", "mine", "random_popular")] == [
        "random",
        "adversarial",
        "mine",
        "random_popular",
    ]


def test_every_kind_has_help_and_records_a_group():
    assert all(kind.help and kind.records for kind in KINDS.values())


def test_real_data_round_evaluation_on_a_real_vlm(pope_files, coco):
    random_q, popular_q, _ = pope_files
    evaluate = round_evaluator(
        [
            f"pope:questions={random_q}+{popular_q},images={coco / 'images'},suffix=shapes",
            f"chair:instances={coco / 'instances.json'},captions={coco / 'captions.json'},images={coco / 'images'},"
            "limit=3,max_new_tokens=6",
        ],
        Setting(device="cpu"),
    )
    report = evaluate(SHAPES_VLM)
    assert set(report) == {"pope", "chair"}
    pope, chair = report["pope"], report["chair"]
    assert set(pope) == {"random", "popular", "mean_f1", "spec"} and pope["spec"].startswith("pope:questions=")
    # the model answers every labelled question: 7 of random (question 7 has no usable label), 3 of popular
    assert (pope["random"]["questions"], pope["random"]["missing"], pope["popular"]["questions"]) == (7, 0, 3)
    assert pope["mean_f1"] == pytest.approx((pope["random"]["f1"] + pope["popular"]["f1"]) / 2)
    assert all(0.0 <= pope[s][m] <= 1.0 for s in ("random", "popular") for m in ("accuracy", "f1", "yes_ratio"))
    assert chair["captions"] == 3 and all(0.0 <= chair[m] <= 1.0 for m in ("chair_s", "chair_i", "recall"))


def test_train_rounds_takes_several_eval_specs(pope_files, coco, tmp_path, monkeypatch):
    """`prefgen train --rounds --eval A --eval B` hands the rounds loop one evaluator measuring both; a bad spec
    stops the command before any round starts."""
    from click.testing import CliRunner

    import prefgen.train.rounds as rounds
    from prefgen.cli.main import cli

    plans = []
    monkeypatch.setattr(rounds, "run_rounds", lambda plan, on_round=None: plans.append(plan))
    monkeypatch.setattr(rounds, "rounds_table", lambda out: (["round"], [["0"]]))
    recipe = Path(__file__).parents[2] / "recipes" / "shapes-sena.yaml"
    pope = f"pope:questions={pope_files[0]},images={coco / 'images'},limit=2,suffix=shapes"
    args = ["train", "--rounds", "1", "--recipe", recipe, "--model", SHAPES_VLM, "--out", tmp_path / "r"]
    result = CliRunner().invoke(cli, [*map(str, args), "--eval", "shapes-qa", "--eval", pope, "--eval-n", "2"])
    assert result.exit_code == 0, result.output
    report = plans[0].evaluate(SHAPES_VLM)
    assert set(report) == {"qa", "pope"} and report["pope"]["random"]["questions"] == 2
    bad = CliRunner().invoke(cli, [*map(str, args), "--eval", "pope:images=x"])
    assert bad.exit_code == 1 and bad.output == "error: --eval pope:images=x: pope needs questions=...\n"
    assert len(plans) == 1


@pytest.mark.slow
def test_one_round_with_real_data_evaluation_recorded_and_shown(pope_files, coco, tmp_path):
    """A real round (build 8 shapes scenes with the best-of-k CSR recipe, 1 training step) evaluated by POPE and
    CHAIR on the COCO fixtures: the lineage records them, `prefgen rounds` and the rounds report show them."""
    import json

    from click.testing import CliRunner

    from prefgen.cli.main import cli
    from prefgen.shapes.world import write_scene_folder

    root = Path(__file__).parents[2]
    write_scene_folder(tmp_path / "scenes", 8, seed=1, split="train")
    text = (root / "recipes" / "shapes-csr-best-of-k.yaml").read_text()
    text = text.replace("../data/shapes-train", str(tmp_path / "scenes"))
    text = text.replace("../prefgen/shapes/checkpoints", str(root / "prefgen" / "shapes" / "checkpoints"))
    (tmp_path / "recipe.yaml").write_text(text.replace("../out/", f"{tmp_path}/out/"))
    images = coco / "images"
    specs = [
        f"pope:questions={pope_files[0]}+{pope_files[1]},images={images},suffix=shapes",
        f"chair:instances={coco / 'instances.json'},captions={coco / 'captions.json'},images={images},"
        "max_new_tokens=8",
    ]
    args = ["train", "--rounds", "1", "--recipe", tmp_path / "recipe.yaml", "--model", SHAPES_VLM]
    args += ["--out", tmp_path / "loop", "--max-steps", "1", "--quiet", "--eval", specs[0], "--eval", specs[1]]
    result = CliRunner().invoke(cli, list(map(str, args)))
    assert result.exit_code == 0, result.output
    assert "pope.mean_f1" in result.output and "chair.chair_s" in result.output  # key columns of the table
    lineage = json.loads((tmp_path / "loop" / "round-1" / "model" / "lineage.json").read_text())
    base = json.loads((tmp_path / "loop" / "round-0.json").read_text())["eval"]
    for found in (base, lineage["eval"]):
        assert set(found["pope"]) == {"random", "popular", "mean_f1", "spec"} and found["chair"]["captions"] == 4
        assert found["pope"]["spec"] == specs[0] and found["chair"]["spec"] == specs[1]
    shown = CliRunner().invoke(cli, ["rounds", str(tmp_path / "loop"), "--metric", "pope.*.f1", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)
    assert [row["round"] for row in rows] == [0, 1]
    assert rows[1]["pope.random.f1"] == lineage["eval"]["pope"]["random"]["f1"]
    assert rows[0]["pope.popular.f1"] == base["pope"]["popular"]["f1"]
    report = CliRunner().invoke(cli, ["report", str(tmp_path / "loop"), "-o", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output
    html = (tmp_path / "r.html").read_text()
    assert "mean_f1" in html and "chair_s" in html
