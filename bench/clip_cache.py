"""CLIP scoring with the image-embedding cache vs without: 5 candidates x 64 images (target <= 0.4x).

Run: .venv/bin/python bench/clip_cache.py [--model DIR] [--runs 3]
A CSR-like pattern: 5 rounds (one per candidate sentence), each scoring 64 (image, sentence) pairs. "cached": one
``ClipScorer`` for the whole run, so each image is encoded once, keyed by its ``image_id`` as a stage passes it
(the source's content hash). "uncached": the same scorer with ``cache_size=0``, which encodes the image of every
pair. Also shown: the cache keyed by the scorer's own pixel hash (no ids given), which pays for hashing.
Images are random noise at COCO's typical 640 x 480 (CSR scores COCO train2014), so preprocessing (resize, crop,
normalise) costs what it does on real inputs; ``--image-size`` changes that. Every run starts with an empty cache;
the ratios of median wall times are measured in this one run. On the tiny CLIP the text tower, which no image
cache can save, is a large share of the cached time; the smaller the images, the more it shows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

TARGET = 0.4
IMAGES, CANDIDATES = 64, 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="An open_clip local-dir folder to use instead of building a tiny one.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image-size", default="640x480", help="WIDTHxHEIGHT of the test images.")
    args = parser.parse_args()
    width, height = (int(side) for side in args.image_size.lower().split("x"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    from PIL import Image

    from prefgen.models import ClipScorer, build_tiny_clip

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or build_tiny_clip(f"{tmp}/clip")
        cached = ClipScorer.load(model="tiny", path=str(folder))
    uncached = ClipScorer(cached.model, cached.preprocess, cached.tokenizer, cache_size=0)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)) for _ in range(IMAGES)]
    rounds = [[f"candidate sentence {j} about picture {i}." for i in range(IMAGES)] for j in range(CANDIDATES)]

    image_ids = [f"img{i}" for i in range(IMAGES)]

    def score(scorer, keys=None):
        scorer.clear_cache()  # every run starts cold: the cache's gain must come from within the run
        return [scorer.cosine(images, texts, keys=keys) for texts in rounds]

    score(cached, image_ids), score(uncached)  # warm-up
    same = np.allclose(score(cached, image_ids), score(uncached), atol=1e-6)
    t_cached = statistics.median(_times(lambda: score(cached, image_ids), args.runs))
    t_hashed = statistics.median(_times(lambda: score(cached), args.runs))
    t_uncached = statistics.median(_times(lambda: score(uncached), args.runs))
    ratio = t_cached / t_uncached
    print(
        f"model: {args.model or 'tiny open_clip'} on {cached.device}; {CANDIDATES} candidates x {IMAGES} images of "
        f"{width} x {height}"
    )
    print(
        f"cached (image ids): {t_cached:.3f} s   cached (pixel hash): {t_hashed:.3f} s   uncached: "
        f"{t_uncached:.3f} s   (median of {args.runs})"
    )
    print(f"same scores: {same}; pixel-hash keys: {t_hashed / t_uncached:.2f}x")
    print(f"cached/uncached = {ratio:.2f}x (target <= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'})")


def _times(fn, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


if __name__ == "__main__":
    main()
