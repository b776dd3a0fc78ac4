"""The loss prefgen's trainer optimises equals the formulas computed independently from plain forward passes."""

import math

import pytest
import torch
import torch.nn.functional as F

from prefgen.recipe.training import MdpoSettings, TrainConfig

BETA = 0.1


@pytest.fixture(scope="module")
def rows():
    import datasets
    from conftest import pair_rows

    items = pair_rows("x", 4)
    for i, row in enumerate(items):
        row["question_source"] = "description" if i % 2 == 0 else "self_question"
    data = datasets.Dataset.from_list(
        [{k: r[k] for k in ("images", "prompt", "chosen", "rejected", "question_source")} for r in items]
    )
    return data.cast_column("images", datasets.List(datasets.Image()))


def trainer_for(config, rows, model_dir, tmp_path):
    from prefgen.train.run import _make_trainer

    trainer, _ = _make_trainer(rows, str(model_dir), tmp_path / "out", config, quiet=True)
    with torch.no_grad():  # move the policy away from the reference, so every term has something to measure
        generator = torch.Generator().manual_seed(0)
        for name, param in trainer.model.named_parameters():
            if "language_model" in name:
                param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return trainer


def sequence_logps(model, batch):
    """Summed log-probs of each completion, and token-mean NLL, from logits: no trl code involved."""
    kwargs = {k: v for k, v in batch.items() if k != "completion_mask"}
    with torch.no_grad():
        logits = model(**kwargs, use_cache=False).logits[:, :-1].float()
    labels, mask = batch["input_ids"][:, 1:], batch["completion_mask"][:, 1:].float()
    token = torch.log_softmax(logits, dim=-1).gather(-1, labels[..., None])[..., 0] * mask
    return token.sum(dim=1), -token.sum(dim=1) / mask.sum(dim=1)


@pytest.mark.parametrize("ica, mdpo", [(0.0, False), (1.0, False), (0.5, True)])
def test_trainer_loss_equals_the_formulas(ica, mdpo, rows, tiny_vlm_dir, tmp_path):
    config = TrainConfig(
        lora=None,
        beta=BETA,
        ica_weight=ica,
        batch_size=4,
        mdpo=MdpoSettings(conditional=0.7, anchor=0.3) if mdpo else None,
    )
    trainer = trainer_for(config, rows, tiny_vlm_dir("llava"), tmp_path)
    batch = trainer.data_collator([rows[i] for i in range(4)])
    trainer.model.eval()
    with torch.no_grad():
        got = trainer.compute_loss(trainer.model, dict(batch)).item()

    policy, nll = sequence_logps(trainer.model, batch)
    reference, _ = sequence_logps(trainer.ref_model, batch)
    pc, pr = policy.chunk(2)
    rc, rr = reference.chunk(2)
    expected = -F.logsigmoid(BETA * ((pc - rc) - (pr - rr))).mean()
    flags = torch.tensor([1.0, 0.0, 1.0, 0.0])
    expected = expected + ica * (flags * nll.chunk(2)[0]).mean()
    if mdpo:
        bad_policy, _ = sequence_logps(trainer.model, batch["corrupted"])
        bad_reference, _ = sequence_logps(trainer.ref_model, batch["corrupted"])
        pc_bad, rc_bad = bad_policy.chunk(2)[0], bad_reference.chunk(2)[0]
        expected = expected + 0.3 * -F.logsigmoid(BETA * (pc - rc)).mean()
        expected = expected + 0.7 * -F.logsigmoid(BETA * ((pc - rc) - (pc_bad - rc_bad))).mean()
    assert not math.isclose(expected.item(), math.log(2) * (1 + (0.3 + 0.7 if mdpo else 0)), abs_tol=1e-3)
    assert got == pytest.approx(expected.item(), abs=1e-4)


def test_ica_runs_no_extra_forward_pass(rows, tiny_vlm_dir, tmp_path):
    calls = {"n": 0}
    counts = {}
    for ica in (0.0, 1.0):
        trainer = trainer_for(
            TrainConfig(lora=None, ica_weight=ica, batch_size=4), rows, tiny_vlm_dir("llava"), tmp_path / str(ica)
        )
        hook = trainer.model.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
        calls["n"] = 0
        with torch.no_grad():
            trainer.compute_loss(trainer.model, trainer.data_collator([rows[i] for i in range(4)]))
        hook.remove()
        counts[ica] = calls["n"]
    assert counts[1.0] == counts[0.0] == 1  # the policy's one forward; the reference is a separate copy


def test_precomputed_reference_gives_the_same_loss_as_a_live_copy(rows, tiny_vlm_dir, tmp_path):
    losses = {}
    for reference in ("copy", "precomputed"):
        trainer = trainer_for(
            TrainConfig(lora=None, reference=reference, batch_size=4),
            rows,
            tiny_vlm_dir("llava"),
            tmp_path / reference,
        )
        if reference == "precomputed":
            assert trainer.ref_model is None and "ref_chosen_logps" in trainer.train_dataset.column_names
        losses[reference] = trainer.train().training_loss
    assert losses["precomputed"] == pytest.approx(losses["copy"], abs=1e-5)
