"""The store's rows are exactly what trl's DPOTrainer reads for VLMs: a version loaded with `datasets` trains."""

import math

import pytest


@pytest.mark.slow
def test_a_published_version_trains_in_trl_dpo_as_it_is(make_store, tiny_vlm_dir, tmp_path):
    import datasets
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import DPOConfig, DPOTrainer

    store = make_store({"v1": 4})
    rows = datasets.load_dataset(str(store.root), split="train")
    model_dir = tiny_vlm_dir("llava")
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = DPOConfig(
        output_dir=str(tmp_path / "dpo"),
        per_device_train_batch_size=2,
        max_steps=2,
        learning_rate=1e-2,
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
        model=model, args=config, train_dataset=rows, processing_class=AutoProcessor.from_pretrained(model_dir)
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert losses[0] == pytest.approx(math.log(2), abs=1e-3)  # policy == reference at the first step
    changed = [name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert any("language_model" in name for name in changed)
