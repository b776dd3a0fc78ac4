"""`TrainConfig.to_dpo_kwargs`: every setting that reaches trl under another name or in another form, one test each,
checked on the ``DPOConfig`` trl builds from them (so a renamed trl argument fails here, not in a run)."""

import math

import pytest
from trl import DPOConfig

from prefgen.recipe.training import LoraSettings, TrainConfig


def dpo_config(tmp_path, use_cpu=True, **settings) -> DPOConfig:
    config = TrainConfig(lora=LoraSettings(), **settings)
    return DPOConfig(output_dir=str(tmp_path), report_to="none", **config.to_dpo_kwargs(use_cpu=use_cpu))


def test_epochs_become_num_train_epochs(tmp_path):
    assert dpo_config(tmp_path, epochs=2.5).num_train_epochs == 2.5


def test_no_max_steps_means_trl_s_minus_one_and_a_count_passes_through(tmp_path):
    assert dpo_config(tmp_path).max_steps == -1
    assert dpo_config(tmp_path, max_steps=7).max_steps == 7


def test_batch_size_and_accumulation_are_trl_s_per_device_names(tmp_path):
    args = dpo_config(tmp_path, batch_size=3, gradient_accumulation=5)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (3, 5)


def test_scheduler_becomes_lr_scheduler_type(tmp_path):
    assert dpo_config(tmp_path, scheduler="linear").lr_scheduler_type == "linear"


@pytest.mark.parametrize("ratio", [0.0, 0.03, 0.5, 0.999, 1.0])
@pytest.mark.parametrize("steps", [1, 7, 100, 12345])
def test_warmup_ratio_is_a_share_of_the_steps_at_every_value_the_schema_allows(tmp_path, ratio, steps):
    args = dpo_config(tmp_path, warmup_ratio=ratio)
    assert args.get_warmup_steps(steps) == math.ceil(steps * ratio)


def test_sft_weight_adds_trl_s_sft_loss_with_its_weight(tmp_path):
    plain = dpo_config(tmp_path)
    assert (plain.loss_type, plain.loss_weights) == (["sigmoid"], [1.0])
    with_sft = dpo_config(tmp_path, sft_weight=0.3)
    assert (with_sft.loss_type, with_sft.loss_weights) == (["sigmoid", "sft"], [1.0, 0.3])


def test_bf16_is_dropped_on_the_cpu_and_kept_elsewhere():
    config = TrainConfig(bf16=True)
    assert config.to_dpo_kwargs(use_cpu=True)["bf16"] is False
    assert config.to_dpo_kwargs(use_cpu=False)["bf16"] is True


def test_the_same_names_pass_through_unchanged(tmp_path):
    args = dpo_config(
        tmp_path, beta=0.2, learning_rate=3e-4, weight_decay=0.01, max_grad_norm=0.5, logging_steps=4, seed=9
    )
    assert (args.beta, args.learning_rate, args.weight_decay, args.max_grad_norm, args.logging_steps, args.seed) == (
        0.2,
        3e-4,
        0.01,
        0.5,
        4,
        9,
    )
