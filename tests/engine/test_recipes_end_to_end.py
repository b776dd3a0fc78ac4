"""The shipped tiny recipes run end to end on the tiny offline models, and what they publish trains in trl."""

import math
from pathlib import Path

import pytest

from prefgen.engine.runner import BuildOptions, run_build
from prefgen.store.folder import Store
from prefgen.store.query import run_query

ROOT = Path(__file__).parents[2]


def local_recipe(name: str, tmp_path: Path, tiny_vlm_dir, tiny_clip_dir, family: str = "llava") -> Path:
    """recipes/tiny/<name>.yaml with its model (of ``family``), image and store paths pointed at this test's
    folders."""
    text = (ROOT / "recipes" / "tiny" / f"{name}.yaml").read_text()
    text = text.replace("../../build/tiny/llava", str(tiny_vlm_dir(family)))
    text = text.replace("../../build/tiny/clip", str(tiny_clip_dir))
    text = text.replace("../../examples", str(ROOT / "examples")).replace("../../out/", f"{tmp_path}/out/")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name, method", [("seva", "seva"), ("sena", "sena"), ("csr", "csr")])
def test_tiny_recipe_publishes_pairs_in_the_output_contract(name, method, tmp_path, tiny_vlm_dir, tiny_clip_dir):
    result = run_build(local_recipe(name, tmp_path, tiny_vlm_dir, tiny_clip_dir), BuildOptions(quiet=True))
    manifest = result.manifest
    assert manifest.rows > 0
    assert manifest.rows + sum(manifest.drops.values()) >= 8  # every image became a pair or a counted drop
    store = Store(tmp_path / "out" / f"tiny-{name}")
    rows = run_query(
        store, "SELECT method, prompt, chosen, rejected, chosen_score, rejected_score, margin, question FROM pairs"
    ).to_pylist()
    assert {r["method"] for r in rows} == {method}
    for row in rows:
        assert row["prompt"] == [{"role": "user", "content": row["question"]}]
        assert row["chosen"][0]["role"] == "assistant" and row["chosen"][0]["content"].strip()
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
        if row["margin"] is not None:
            assert row["margin"] == pytest.approx(row["chosen_score"] - row["rejected_score"])


@pytest.mark.slow
def test_tiny_sena_pairs_train_one_dpo_step(tmp_path, tiny_vlm_dir, tiny_clip_dir):
    import datasets
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import DPOConfig, DPOTrainer

    run_build(local_recipe("sena", tmp_path, tiny_vlm_dir, tiny_clip_dir), BuildOptions(quiet=True))
    rows = datasets.load_dataset(str(tmp_path / "out" / "tiny-sena"), split="train")
    model_dir = tiny_vlm_dir("llava")
    config = DPOConfig(
        output_dir=str(tmp_path / "dpo"),
        per_device_train_batch_size=2,
        max_steps=1,
        beta=0.1,
        max_length=None,
        bf16=False,
        use_cpu=True,
        activation_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        dataloader_num_workers=0,
    )
    trainer = DPOTrainer(
        model=AutoModelForImageTextToText.from_pretrained(model_dir),
        args=config,
        train_dataset=rows,
        processing_class=AutoProcessor.from_pretrained(model_dir),
    )
    trainer.train()
    [loss] = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert loss == pytest.approx(math.log(2), abs=1e-3)


@pytest.mark.slow
def test_quickstart_runs_on_the_shipped_shapes_models_and_scores_against_ground_truth(tmp_path):
    from prefgen.eval.benches import store_reward

    result = run_build(ROOT / "recipes" / "quickstart.yaml", BuildOptions(quiet=True, limit=6, out=tmp_path / "qs"))
    assert result.manifest.rows > 0 and result.manifest.models["vlm"].path.endswith("shapes-vlm")
    report = store_reward(str(tmp_path / "qs"), ROOT / "examples" / "shapes")
    assert report["unmatched_pairs"] == 0 and report["all"]["pairs"] == result.manifest.rows


def test_shipped_shapes_checkpoints_load_through_the_auto_classes_and_open_clip():
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from prefgen.models import ClipScorer

    folder = ROOT / "prefgen" / "shapes" / "checkpoints"
    model = AutoModelForImageTextToText.from_pretrained(folder / "shapes-vlm")
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    assert AutoProcessor.from_pretrained(folder / "shapes-vlm").tokenizer("a red circle").input_ids
    scorer = ClipScorer.load(model="shapes-clip", path=str(folder / "shapes-clip"), device="cpu")
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert scorer is not None and size < 30e6


def test_early_vlm_is_the_shipped_runs_snapshot_with_its_frozen_tower_and_its_own_language_model():
    """shapes-vlm-early (the SENA loop's base) shares the shipped VLM's vision tower, frozen during SFT, bit for
    bit; its language model is an earlier one; it loads the ordinary way and stays small."""
    import torch
    from safetensors.torch import load_file

    folder = ROOT / "prefgen" / "shapes" / "checkpoints"
    early = load_file(folder / "shapes-vlm-early" / "model.safetensors")
    shipped = load_file(folder / "shapes-vlm" / "model.safetensors")
    assert early.keys() == shipped.keys()
    tower = [k for k in early if "vision_tower" in k]
    language = [k for k in early if "language_model" in k]
    assert tower and language
    assert all(torch.equal(early[k], shipped[k]) for k in tower)
    assert not any(torch.equal(early[k], shipped[k]) for k in language if early[k].numel() > 1)
    size = sum(f.stat().st_size for f in (folder / "shapes-vlm-early").iterdir())
    assert size < 6e6
    from prefgen.models import VLM

    vlm = VLM.load(path=str(folder / "shapes-vlm-early"), device="cpu", dtype="float32")
    assert vlm is not None
