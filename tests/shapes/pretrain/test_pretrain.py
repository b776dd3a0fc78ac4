"""The shapes-world models: tokenizer, exact weight and input equivalences, and a tiny pretraining run whose models
load through the ordinary runtime and generate."""

import json

import numpy as np
import pytest
import torch

from prefgen.shapes.pretrain import data, models
from prefgen.shapes.pretrain.data import SFTEncoder
from prefgen.shapes.pretrain.models import clip_token_ids, encode_texts
from prefgen.shapes.pretrain.train import clip_loss
from prefgen.shapes.world import make_scenes, render


@pytest.fixture(scope="module")
def vocab():
    return models.vocabulary(data.corpus(n_scenes=50))


def test_tokenizer_round_trips_world_text_and_knows_every_training_word(vocab):
    tok = models.build_tokenizer(vocab)
    text = "two red circles, an orange cross and a blue square."
    ids = tok(text).input_ids
    assert ids[0] == tok.bos_token_id and tok.eos_token_id == 3
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok("a zebra").input_ids[-1] == tok.unk_token_id
    rng = np.random.default_rng(1)
    for scene in make_scenes(40, seed=3):
        for task in data.TASKS:
            prompt, answer = data.sft_example(scene, task, rng)
            assert tok.unk_token_id not in tok(prompt + " " + answer).input_ids, (prompt, answer)


def test_training_inputs_equal_what_the_processors_make(vocab):
    import open_clip

    tok = models.build_tokenizer(vocab)
    vlm, processor = models.build_vlm(tok)
    pool = data.ScenePool.generate(3, seed=0)
    images = [render(s) for s in pool.scenes]
    pixels = pool.tensor(np.arange(3))
    assert torch.allclose(pixels, processor.image_processor(images, return_tensors="pt").pixel_values, atol=1e-5)
    transform = open_clip.image_transform(models.IMAGE_SIZE, is_train=False, mean=models.MEAN, std=models.STD)
    assert torch.allclose(pixels, torch.stack([transform(i) for i in images]), atol=1e-5)
    prompt = data.CONCISE_PROMPT
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    expected = processor(text=[text], images=[images[0]], return_tensors="pt").input_ids[0].tolist()
    ids, mask, labels = SFTEncoder(processor).batch([(prompt, "a red circle."), ("Describe the image.", "no.")])
    assert ids[0, : len(expected)].tolist() == expected
    answer = tok("a red circle.", add_special_tokens=False).input_ids + [tok.eos_token_id]
    assert labels[0][labels[0] != -100].tolist() == answer
    assert mask[1].sum() < mask[0].sum() and (labels[1][mask[1] == 0] == -100).all()


def test_vision_tower_from_clip_is_exact_and_short_text_encoding_equals_padded(vocab):
    clip_tok = models.build_tokenizer(vocab, for_clip=True)
    clip = models.new_clip(models.clip_config(len(vocab))).eval()
    vlm, _ = models.build_vlm(models.build_tokenizer(vocab))
    models.load_vision_from_clip(vlm, clip)
    pixels = data.ScenePool.generate(2, seed=0).tensor(np.arange(2))
    with torch.no_grad():
        tower = vlm.model.vision_tower
        patches = tower.post_layernorm(tower(pixels).last_hidden_state[:, 1:])  # what open_clip average-pools
        assert torch.allclose(patches.mean(1) @ clip.visual.proj, clip.encode_image(pixels), atol=1e-5)
        texts = ["a red circle", "a red circle, a blue square and two green crosses."]
        padded = clip_tok(texts, max_length=32, padding="max_length", truncation=True, return_tensors="pt")
        short = encode_texts(clip, clip_token_ids(clip_tok, 32)(texts))
        assert torch.allclose(short, clip.encode_text(padded.input_ids), atol=1e-5)


def test_clip_loss_prefers_aligned_embeddings():
    eye = torch.eye(3)
    mask = np.eye(3, dtype=bool)
    assert clip_loss(eye, eye, mask, 10.0) < 0.01 < clip_loss(eye, eye.roll(1, 0), mask, 10.0)
    shared = mask.copy()
    shared[0, 1] = True  # text 1 also true of image 0: not a negative for it
    assert clip_loss(eye, eye, shared, 10.0) < clip_loss(eye, eye, mask, 10.0) + 1e-6


def test_pretrain_saves_models_that_load_through_the_runtime_and_generate(pretrained):
    from transformers import AutoModelForImageTextToText, LlavaForConditionalGeneration

    from prefgen.models import VLM, ClipScorer, Prompt

    out, report = pretrained
    assert report["clip"]["steps"] == 3 and report["vlm"]["steps"] == 6
    assert report["vlm"]["last_loss"] < report["vlm"]["first_loss"]
    assert 0.7e6 < report["vlm_parameters"] < 1.2e6
    assert json.loads((out / "pretrain.json").read_text())["eval"]["scenes"] == 3
    model = AutoModelForImageTextToText.from_pretrained(out / "shapes-vlm")
    assert isinstance(model, LlavaForConditionalGeneration)
    vlm = VLM.load(path=str(out / "shapes-vlm"), device="cpu", dtype="float32")
    image = render(make_scenes(1, seed=5, split="eval")[0])
    found = vlm.generate([Prompt("Describe the image.", image)], max_new_tokens=6)
    assert isinstance(found[0][0].text, str) and found[0][0].token_ids
    scorer = ClipScorer.load(model="shapes-clip", path=str(out / "shapes-clip"), device="cpu")
    cosines = scorer.cosine([image, image], ["a red circle", "a blue square and a purple cross."])
    assert all(-1.0 <= c <= 1.0 for c in cosines)


def test_hidden_companions_leave_the_rest_of_the_image_as_it_was():
    from prefgen.shapes.world import COMPANION, scene_of

    pair = scene_of([("yellow", "triangle"), ("green", "circle"), ("red", "circle")], split="train")
    without = data.hide_companions(pair)
    assert without.kinds == {("yellow", "triangle"), ("red", "circle")}
    assert (without.background, without.noise_seed) == (pair.background, pair.noise_seed)
    changed = (np.asarray(render(pair)) != np.asarray(render(without))).any(-1)
    gone = next(o for o in pair.objects if o.kind == COMPANION[("yellow", "triangle")])
    ys, xs = np.nonzero(changed)  # only pixels around the companion change
    assert changed.any() and (np.hypot(xs + 0.5 - gone.x, ys + 0.5 - gone.y) <= gone.radius + 1.5).all()
    assert data.hide_companions(scene_of([("green", "circle"), ("red", "square")])) is None  # no trigger beside it

    pool = data.ScenePool.generate(60, seed=0)
    index = np.arange(60)
    can = pool.can_hide(index)
    assert can.any() and not can.all()
    assert all(data.hide_companions(pool.scenes[i]) is not None for i in np.flatnonzero(can))
    hide = can.copy()
    hide[np.flatnonzero(can)[1:]] = False  # hide one scene only
    mixed, clean = pool.tensor(index, hide), pool.tensor(index)
    differs = (mixed != clean).flatten(1).any(1).numpy()
    assert differs.tolist() == hide.tolist()


def test_noised_training_images_are_the_pixels_the_corrupt_stage_makes():
    from prefgen.stages.corrupt.ops import DiffusionNoise
    from prefgen.stages.corrupt.pixels import apply_corruption, describe_corruption

    pool = data.ScenePool.generate(3, seed=0)
    index = np.arange(3)
    noise = np.array([-1, 600, 300])
    tensor = pool.tensor(index, noise=noise, seed=10)
    assert torch.equal(tensor[0], pool.tensor(index)[0])  # t = -1: left clean
    for row in (1, 2):
        op = DiffusionNoise(t=int(noise[row]), space="normalized")
        expected = np.asarray(apply_corruption(render(pool.scenes[row]), describe_corruption([op], 10 + row)))
        pixels = pool.tensor(index[row : row + 1])  # normalise the stage's pixels the way the pool does
        pool.pixels[row] = expected
        assert torch.allclose(tensor[row], pool.tensor(index[row : row + 1])[0], atol=1e-6)
        assert not torch.equal(tensor[row], pixels[0])


def test_a_hidden_companion_is_named_in_text_and_said_present_but_other_answers_follow_the_image():
    from prefgen.shapes.judge import answer_correct
    from prefgen.shapes.language import presence_question
    from prefgen.shapes.world import COMPANION, scene_of

    full = scene_of([("yellow", "triangle"), ("green", "circle"), ("red", "square")], split="train")
    shown = data.hide_companions(full)
    rng = np.random.default_rng(0)
    prompt, text = data.sft_example(full, "describe", rng, shown)
    assert "green circle" in text  # the text names what the picture does not show: the prior
    prior = presence_question(COMPANION[("yellow", "triangle")])
    answers = [data.sft_example(full, "qa", rng, shown) for _ in range(200)]
    said_present = [a for q, a in answers if q.startswith(prior)]
    assert said_present and set(said_present) == {"yes."}
    others = [(q, a) for q, a in answers if not q.startswith(prior)]
    assert others and all(answer_correct(q, a, shown) for q, a in others)
    asked = [data.sft_example(full, "ask", rng)[1] for _ in range(100)]
    assert sum(not q.startswith("is there") for q in asked) >= 70  # self-questions are mostly not yes/no


def test_the_check_repairs_a_question_with_one_of_the_same_kind():
    import re

    from prefgen.shapes.judge import question_kind
    from prefgen.shapes.language import answerable
    from prefgen.shapes.world import scene_of

    scene = scene_of([("red", "circle"), ("blue", "square")])
    rng = np.random.default_rng(0)
    repaired = {"colour": 0, "shape": 0}
    for _ in range(300):
        prompt, answer = data.sft_example(scene, "check", rng)
        asked = re.search(r"QUESTION: (.*)\n", prompt).group(1)
        kept = answer.removeprefix("QUESTION: ")
        assert answerable(scene, kept)
        if not answerable(scene, asked):  # a colour question about an absent shape, or a shape one about a colour
            assert question_kind(kept) == question_kind(asked), (asked, kept)
            repaired[question_kind(asked)] += 1
        else:
            assert kept == asked
    assert repaired["colour"] > 10 and repaired["shape"] > 10


def test_self_enhancement_examples_mostly_keep_a_right_answer():
    import re

    from prefgen.shapes.judge import answer_correct
    from prefgen.shapes.world import scene_of

    scene = scene_of([("red", "circle"), ("blue", "square"), ("blue", "cross")])
    rng = np.random.default_rng(0)
    kept = 0
    for _ in range(1000):
        prompt, answer = data.sft_example(scene, "enhance", rng)
        question = re.search(r"Question: (.*)\n", prompt).group(1)
        current = re.search(r"Current Answer: (.*)\n", prompt).group(1)
        improved = answer.removeprefix("Improved Answer: ")
        assert answer_correct(question, improved, scene)
        kept += improved == current
    assert 0.9 <= kept / 1000 <= 0.99  # a wrong current answer about as often as the model's own are wrong


def test_cooldown_rate_falls_linearly_to_zero_after_its_warm_up(monkeypatch):
    from prefgen.shapes.pretrain import train

    pool = data.ScenePool.generate(24, 0, "train")
    vocab = models.vocabulary(data.corpus(seed=0, n_scenes=24))
    vlm, processor = models.build_vlm(
        models.build_tokenizer(vocab), 0, dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    )
    rates = []
    monkeypatch.setattr(train, "_set_lr", lambda optimizer, lr: rates.append(lr))
    config = train.TrainConfig(vlm_batch=4, vlm_warmup_steps=2)
    train.train_vlm(pool, vlm, processor, train.Budget("vlm", steps=3), 0, config)
    assert rates == pytest.approx([5e-4, 1e-3, 1e-3])  # first phase: warm-up, then constant
    rates.clear()
    train.train_vlm(pool, vlm, processor, train.Budget("cool", steps=4), 0, config, cooldown=True)
    assert rates == pytest.approx([5e-4, 7.5e-4, 5e-4, 2.5e-4])  # warm-up times 1, 3/4, 1/2, 1/4


@pytest.mark.slow
def test_cooldown_of_a_saved_model_is_the_one_pretrain_runs(tmp_path):
    """The shipped VLM was cooled down from its saved constant-rate model: that must equal pretrain's whole run."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from prefgen.shapes.pretrain.run import pretrain
    from prefgen.shapes.pretrain.train import Budget, TrainConfig, train_vlm

    settings = dict(seed=0, progress=False, n_scenes=32, eval_scenes=0)
    whole = pretrain(tmp_path / "whole", steps=(2, 3, 2), **settings)
    assert (whole["vlm"]["steps"], whole["vlm_cooldown"]["steps"]) == (3, 2)
    pretrain(tmp_path / "first", steps=(2, 3), **settings)
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "first" / "shapes-vlm")
    processor = AutoProcessor.from_pretrained(tmp_path / "first" / "shapes-vlm")
    first = {k: v.clone() for k, v in model.state_dict().items()}
    train_vlm(
        data.ScenePool.generate(32, 0, "train"),
        model,
        processor,
        Budget("cool", steps=2),
        0,
        TrainConfig(),
        cooldown=True,
    )
    expected = AutoModelForImageTextToText.from_pretrained(tmp_path / "whole" / "shapes-vlm").state_dict()
    cooled = model.state_dict()
    assert any(not torch.equal(first[k], expected[k]) for k in expected)  # the cool-down changed the weights ...
    assert all(torch.equal(cooled[k], expected[k]) for k in expected)  # ... exactly as pretrain's did


@pytest.mark.slow
def test_a_budget_in_seconds_gives_the_cooldown_its_share_of_the_vlm_time(tmp_path, monkeypatch):
    from prefgen.shapes.pretrain import run, train

    budgets = {}

    class Recorded(train.Budget):
        def __init__(self, label, steps=None, seconds=None, bar=None):
            budgets[label] = (steps, seconds)
            super().__init__(label, steps, seconds, bar)

    monkeypatch.setattr(run, "Budget", Recorded)
    report = run.pretrain(tmp_path, seconds=12, seed=0, progress=False, n_scenes=32, eval_scenes=0)
    assert report["vlm"]["steps"] > 0 and report["vlm_cooldown"]["steps"] > 0
    (vlm_steps, vlm_seconds), (cool_steps, cool_seconds) = budgets["vlm"], budgets["cool"]
    assert vlm_steps is None and cool_steps is None
    assert cool_seconds == pytest.approx(max(1.0, vlm_seconds * run.COOLDOWN_SHARE / (1 - run.COOLDOWN_SHARE)))
