"""``prefgen eval`` on real-data files (CHAIR, POPE) and ``prefgen eval chair-sample``, through the whole CLI."""

import json
from pathlib import Path

from click.testing import CliRunner

import prefgen.shapes
from prefgen.cli.main import cli
from prefgen.eval.benches import BENCHES


def run(*args):
    return CliRunner().invoke(cli, ["eval", *map(str, args)])


def test_chair_on_answers_writes_the_result(coco, tmp_path):
    out = tmp_path / "r.json"
    result = run(
        "--bench", "chair", "--answers", coco / "caps.jsonl", "--instances", coco / "instances.json",
        "--captions", coco / "captions.json", "--synonyms", coco / "synonyms.txt", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert (data["chair_s"], data["chair_i"], data["recall"], data["n_captions"]) == (0.75, 0.5, 0.625, 4)
    assert set(data["sentences"][0]) >= {"image_id", "caption", "mentioned", "hallucinated", "ground_truth"}
    assert f"synonyms: {coco / 'synonyms.txt'}" in result.output and "chair_s 0.750" in result.output


def test_coco_annotations_stays_an_alias_and_the_default_table_is_named(coco, tmp_path):
    out = tmp_path / "r.json"
    result = run("--bench", "chair", "--answers", coco / "caps.jsonl", "--coco-annotations", coco / "instances.json",
                 "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["synonyms"] == "prefgen" and "synonyms: prefgen" in result.output


def test_pope_on_answers(pope_files, tmp_path):
    random_q, popular_q, answers = pope_files
    out = tmp_path / "p.json"
    result = run(
        "--bench", "pope", "--answers", answers, "--questions", random_q, "--questions", popular_q, "--out", out
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data["splits"]) == {"coco_pope_random", "coco_pope_popular"}
    assert abs(data["mean_f1"] - 7 / 12) < 1e-12 and data["rule"].startswith("POPE's official rule")
    assert set(data["splits"]["coco_pope_random"]) >= {"accuracy", "precision", "recall", "f1", "yes_ratio", "n"}
    assert "rule: POPE's official rule" in result.output and "coco_pope_random" in result.output


def test_bad_input_is_one_line_with_exit_1(coco, tmp_path):
    (tmp_path / "caps.jsonl").write_text('{"image_id": 1, "caption": "a dog"}\n{"image_id": 2, "caption": "a\n')
    result = run("--bench", "chair", "--answers", tmp_path / "caps.jsonl", "--instances", coco / "instances.json")
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {tmp_path / 'caps.jsonl'}:2: malformed JSON")
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_eval_says_what_a_bench_needs():
    result = run("--bench", "pope")
    assert result.exit_code == 2
    assert "--bench pope needs --answers and --questions, or --model, --questions and --images" in result.output
    result = run("--bench", "chair", "--answers", __file__)
    assert "needs --answers and --instances, or --model, --instances and --images" in result.output
    assert run().exit_code == 2 and "give --bench NAME, or a command (chair-sample)" in run().output


def test_help_lists_every_bench_from_the_table():
    result = run("--help")
    for name, bench in BENCHES.items():
        assert f"{name}: {bench.help}" in " ".join(result.output.split())


def test_readme_names_every_bench():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert all(f"--bench {name}" in readme for name in BENCHES)


def test_chair_sample_writes_the_same_ids_for_the_same_seed(coco, tmp_path):
    args = ["chair-sample", "--instances", coco / "instances.json", "-n", "2", "--seed", "7"]
    first, second = run(*args, "-o", tmp_path / "a.txt"), run(*args, "-o", tmp_path / "b.txt")
    assert second.exit_code == 0, second.output
    assert first.exit_code == 0, first.output
    assert "2 image ids (seed 7) ->" in first.output
    ids = (tmp_path / "a.txt").read_text()
    assert ids == (tmp_path / "b.txt").read_text() and len(ids.split()) == 2
    result = run("chair-sample", "--instances", coco / "instances.json", "-n", "5", "-o", tmp_path / "c.txt")
    assert result.exit_code == 1 and "error: only 4 images to draw 5 from" in result.output


def test_chair_and_pope_with_a_model(coco, pope_files, tmp_path):
    from transformers.utils.logging import disable_progress_bar, enable_progress_bar

    vlm = Path(prefgen.shapes.__file__).parent / "checkpoints" / "shapes-vlm"
    out = tmp_path / "c.json"
    images = ["--images", coco / "images"]
    result = run("--bench", "chair", "--model", vlm, "--instances", coco / "instances.json", *images,
                 "--limit", 2, "--max-new-tokens", 5, "--device", "cpu", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["n_captions"] == 2 and data["prompt"] == "Describe this image." and data["max_new_tokens"] == 5
    assert [s["image_id"] for s in data["sentences"]] == [1, 2] and data["synonyms"] == "prefgen"
    enable_progress_bar()  # as a user has them (the test session turns them off): -q keeps them off the console
    try:
        result = run("--bench", "pope", "--model", vlm, "--questions", pope_files[0], *images,
                     "--limit", 3, "--short-answer", "--device", "cpu", "--out", out, "-q")  # fmt: skip
    finally:
        disable_progress_bar()
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["splits"]["coco_pope_random"]["n"] == 3 and len(data["given"]["coco_pope_random"]) == 3
    assert result.stderr.splitlines() == [] and result.stdout.splitlines()[-1] == f"report -> {out}"
    assert "Loading weights" in out.with_suffix(".log").read_text()
