"""``prefgen shapes ...`` and ``prefgen eval``, run through click (the groups are wired into ``prefgen`` there)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from prefgen.cli.eval import eval_command
from prefgen.cli.shapes import shapes
from prefgen.eval import benches as bench
from prefgen.shapes.world import read_ground_truth


def test_scenes_command_writes_a_source_folder(tmp_path):
    result = CliRunner().invoke(shapes, ["scenes", "--out", str(tmp_path / "s"), "-n", "4", "--split", "train"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "s").glob("*.png"))) == 4 and len(read_ground_truth(tmp_path / "s")) == 8


def test_eval_shapes_benches_on_a_pretrained_model(pretrained, tmp_path):
    out, _ = pretrained
    report = tmp_path / "chair.json"
    result = CliRunner().invoke(
        eval_command,
        [
            "--bench",
            "shapes-chair",
            "--model",
            str(out / "shapes-vlm"),
            "--n",
            "3",
            "--device",
            "cpu",
            "--out",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["captions"] == 3 and 0.0 <= data["chair_s"] <= 1.0 and "chair_s" in result.output
    result = CliRunner().invoke(
        eval_command,
        [
            "--bench",
            "shapes-clip",
            "--clip",
            str(out / "shapes-clip"),
            "--n",
            "5",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "c.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads((tmp_path / "c.json").read_text())["same_colour"] <= 1.0


def test_eval_pope_on_a_pretrained_model(pretrained, tmp_path):
    out, _ = pretrained
    result = CliRunner().invoke(
        eval_command,
        [
            "--bench",
            "shapes-pope",
            "--model",
            str(out / "shapes-vlm"),
            "--n",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "p.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "p.json").read_text())
    assert set(data) >= {"random", "popular", "adversarial"} and data["random"]["questions"] > 0


def test_eval_reward_scores_a_store_against_ground_truth(tmp_path):
    from prefgen.shapes.world import write_scene_folder
    from prefgen.store.folder import Store

    folder = write_scene_folder(tmp_path / "scenes", 2, seed=0, split="eval")
    truth = [json.loads(line) for line in (folder / "ground_truth.jsonl").read_text().splitlines()]
    rows = []
    for i, record in enumerate(truth):
        right = ", ".join(f"a {o['colour']} {o['shape']}" for o in record["scene"]["objects"]) + "."
        rows.append(
            {
                "id": f"p{i}",
                "images": [str(folder / record["file"])],
                "image_id": record["image_id"],
                "prompt": [{"role": "user", "content": "Describe the image."}],
                "chosen": [{"role": "assistant", "content": right if i == 0 else "nothing at all."}],
                "rejected": [
                    {
                        "role": "assistant",
                        "content": right
                        if i
                        else "a purple cross and a green "
                        "triangle and a red circle and a blue square and an orange circle.",
                    }
                ],
                "question": "Describe the image.",
                "method": "test",
            }
        )
    store = Store.create(tmp_path / "store")
    with store.draft("v1") as draft:
        draft.write_shard(0, rows)
        draft.publish(message="pairs")
    result = CliRunner().invoke(
        eval_command,
        [
            "--bench",
            "reward",
            "--store",
            str(tmp_path / "store"),
            "--ground-truth",
            str(folder),
            "--out",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["unmatched_pairs"] == 0 and data["version"] == "v1"
    assert (data["all"]["better"], data["all"]["worse"]) == (1, 1)  # pair 0 is right, pair 1 is inverted
    assert data["method:test"]["pairs"] == 2
    judged = bench.pair_judge(folder / "ground_truth.jsonl")(f"{tmp_path / 'store'}@v1")
    assert judged == {
        "pairs": 2,
        "accuracy": 0.5,
        "better": 1,
        "tie": 0,
        "worse": 1,
        "chosen_longer": 0.0,
        "by_kind": {
            "description": {
                "pairs": 2,
                "better": 1,
                "tie": 0,
                "worse": 1,
                "chosen_hallucinated": 0,
                "rejected_hallucinated": 1,
            }
        },
    }


@pytest.mark.slow
def test_pretrain_command_trains_exact_steps_and_its_defaults_are_the_libraries(tmp_path):
    from prefgen.cli import shapes as cli
    from prefgen.shapes.pretrain import run

    assert (cli.CLIP_SHARE, cli.CLIP_STEPS, cli.VLM_STEPS, cli.COOLDOWN_STEPS) == (
        0.25,
        run.CLIP_STEPS,
        run.VLM_STEPS,
        run.COOLDOWN_STEPS,
    )
    out = tmp_path / "models"
    args = [
        "pretrain",
        "--out",
        str(out),
        "--clip-steps",
        "2",
        "--vlm-steps",
        "3",
        "--cooldown-steps",
        "2",
        "--scenes",
        "24",
        "--eval-scenes",
        "0",
        "--quiet",
    ]
    result = CliRunner().invoke(shapes, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "pretrain.json").read_text())
    assert (report["clip"]["steps"], report["vlm"]["steps"], report["vlm_cooldown"]["steps"], report["scenes"]) == (
        2,
        3,
        2,
        24,
    )
    assert "CLIP: 2 steps" in result.output and "then 2 cooling down" in result.output
    assert (out / "shapes-vlm" / "config.json").exists()
    again = CliRunner().invoke(shapes, args)
    assert again.exit_code != 0 and "is not empty; pass --force" in again.output


@pytest.mark.slow
def test_pretrain_snapshot_from_a_given_clip_is_the_shorter_runs_model(tmp_path):
    """`--clip-from` skips the CLIP; `--snapshot K` saves the K-step VLM, which is bit for bit a K-step run's."""
    import torch
    from safetensors.torch import load_file

    clip = Path(__file__).resolve().parents[2] / "prefgen" / "shapes" / "checkpoints" / "shapes-clip"
    common = ["--clip-from", str(clip), "--cooldown-steps", "0", "--scenes", "24", "--eval-scenes", "0", "--quiet"]
    long_args = ["pretrain", "--out", str(tmp_path / "long"), "--vlm-steps", "4", "--snapshot", "2", *common]
    result = CliRunner().invoke(shapes, long_args)
    assert result.exit_code == 0, result.output
    assert "snapshot after 2 VLM steps -> " in result.output
    assert not (tmp_path / "long" / "shapes-clip").exists()  # the given CLIP is used, not copied
    short = CliRunner().invoke(shapes, ["pretrain", "--out", str(tmp_path / "short"), "--vlm-steps", "2", *common])
    assert short.exit_code == 0, short.output
    snapshot = load_file(tmp_path / "long" / "shapes-vlm-step2" / "model.safetensors")
    shorter = load_file(tmp_path / "short" / "shapes-vlm" / "model.safetensors")
    final = load_file(tmp_path / "long" / "shapes-vlm" / "model.safetensors")
    assert snapshot.keys() == shorter.keys()
    assert all(torch.equal(snapshot[k], shorter[k]) for k in snapshot)
    assert any(not torch.equal(snapshot[k], final[k]) for k in snapshot)  # two more steps changed the weights
    late = CliRunner().invoke(
        shapes, ["pretrain", "--out", str(tmp_path / "late"), "--vlm-steps", "2", "--snapshot", "3", *common]
    )
    assert late.exit_code == 2 and "--snapshot 3 is after the last VLM step (2)" in late.output


def test_shipped_vlm_reads_the_tower_layer_pretrain_builds():
    from pathlib import Path

    import prefgen.shapes
    from prefgen.shapes.pretrain.models import VISION_FEATURE_LAYER

    config = json.loads((Path(prefgen.shapes.__file__).parent / "checkpoints/shapes-vlm/config.json").read_text())
    assert config["vision_feature_layer"] == VISION_FEATURE_LAYER == 3
