"""The open_clip scorer on a tiny random CLIP: scores, cache, truncation, calibration, sibling ranks."""

import pytest
import torch
from PIL import Image

from prefgen.core.errors import PrefgenError
from prefgen.models.clip import ClipScore, ClipScorer
from prefgen.stages.csr.tree import sibling_ranks

TEXTS = ["a red square", "a blue circle on a white background", "a cat", "a gradient"]


def manual_cosine(scorer, image, text):
    """Cosine computed straight from the open_clip model, without the scorer's cache or batching."""
    with torch.no_grad():
        image_emb = scorer.model.encode_image(scorer.preprocess(image)[None])
        text_emb = scorer.model.encode_text(scorer.tokenizer([text]))
    return torch.nn.functional.cosine_similarity(image_emb, text_emb).item()


def test_scores_match_open_clip_directly(clip_scorer, images):
    scores = clip_scorer.score(images, TEXTS[:3])
    for image, text, score in zip(images, TEXTS, scores):
        assert score.cosine == pytest.approx(manual_cosine(clip_scorer, image, text), abs=1e-5)


def test_cached_scores_are_identical_to_uncached_ones(tiny_clip_dir, images):
    cached = ClipScorer.load(model="tiny", path=str(tiny_clip_dir), device="cpu")
    uncached = ClipScorer(cached.model, cached.preprocess, cached.tokenizer, cache_size=0)
    pairs_images = [image for image in images for _ in TEXTS]
    pairs_texts = TEXTS * len(images)
    first = cached.cosine(pairs_images, pairs_texts)
    second = cached.cosine(pairs_images, pairs_texts)  # all from the cache now
    plain = uncached.cosine(pairs_images, pairs_texts)
    assert first == second
    assert first == pytest.approx(plain, abs=1e-6)


def test_each_image_is_encoded_once_per_scorer(tiny_clip_dir, images):
    scorer = ClipScorer.load(model="tiny", path=str(tiny_clip_dir), device="cpu")
    scorer.score([images[0]] * 5, TEXTS + ["more"])
    scorer.score([images[0], images[1]], TEXTS[:2])
    assert (scorer.misses, scorer.hits) == (2, 5)  # 7 lookups, 2 images encoded
    copy = images[0].copy()  # same pixels, other object: same cache entry
    scorer.score([copy], ["x"])
    assert scorer.misses == 2


def test_caller_keys_name_cache_entries(tiny_clip_dir, images):
    scorer = ClipScorer.load(model="tiny", path=str(tiny_clip_dir), device="cpu")
    scorer.score([images[0]], ["x"], keys=["img-1"])
    scorer.score([images[0]], ["y"], keys=["img-1"])
    assert (scorer.misses, scorer.hits) == (1, 1)


def test_long_texts_are_truncated_to_the_context_length(clip_scorer, images):
    long = "a red square " * 60  # far beyond 77 tokens
    assert clip_scorer.context_length == 77
    (base, longer) = clip_scorer.cosine([images[0]] * 2, [long, long + " and then a green dog"])
    assert base == pytest.approx(longer, abs=1e-6)


def test_transparent_images_are_scored_on_white(clip_scorer):
    rgba = Image.new("RGBA", (32, 32), (200, 10, 10, 0))
    white = Image.new("RGB", (32, 32), (255, 255, 255))
    assert clip_scorer.cosine([rgba], ["x"]) == pytest.approx(clip_scorer.cosine([white], ["x"]), abs=1e-6)


def test_calibrated_score_is_max_of_100_cos_and_zero():
    assert ClipScore.from_cosine(0.31) == ClipScore(0.31, pytest.approx(31.0), pytest.approx(31.0))
    negative = ClipScore.from_cosine(-0.2)
    assert negative.scaled == pytest.approx(-20.0) and negative.calibrated == 0.0


def test_sibling_ranks_follow_csr_released_code():
    assert sibling_ranks([0.3, 0.9, 0.1]) == [pytest.approx(2 / 3), pytest.approx(1 / 3), 1.0]
    assert sibling_ranks([0.5, 0.5, 0.2, 0.5]) == [0.25, 0.5, 1.0, 0.75]  # ties keep their order
    assert sibling_ranks([]) == []


def test_mismatched_lengths_are_refused(clip_scorer, images):
    with pytest.raises(ValueError, match="one text per image"):
        clip_scorer.score(images, ["only one"])


def test_missing_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(PrefgenError, match="does not exist"):
        ClipScorer.load(model="ViT-B-32", path=str(tmp_path / "nothing.pt"))


def test_unknown_model_suggests_the_close_name():
    with pytest.raises(PrefgenError, match="did you mean ViT-B-32"):
        ClipScorer.load(model="ViT-B32", pretrained="openai")


def test_pretrained_tag_not_downloaded_says_how_to_get_it():
    with pytest.raises(PrefgenError) as error:
        ClipScorer.load(model="ViT-B-32", pretrained="openai", device="cpu")
    message = str(error.value)
    assert "\n" not in message and "hf download timm/vit_base_patch32_clip_224.openai" in message
