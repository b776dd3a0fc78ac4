"""Cheap stages and a corpus for the runner benchmarks (not part of prefgen; registered only while a bench runs).

``bench_work`` stands in for a model stage: it spends a fixed amount of CPU per row (a small matrix product loop),
so the time inside stage methods is known and the rest of a build's wall time is the runner's own cost: listing and
hashing the source, decoding images, the per-stage cache, writing shards and rejects, publishing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from prefgen.recipe.catalogue import STAGES
from prefgen.stages.base import Stage, StageParams


class BenchWorkParams(StageParams):
    """Spend `ms_per_row` of CPU per row, then write a question and two candidate answers with scores."""

    type: Literal["bench_work"] = "bench_work"
    ms_per_row: float = Field(2.0, ge=0.0)
    reads: ClassVar = ("image_id",)
    writes: ClassVar = ("question", "good", "bad", "good_score", "bad_score")


class BenchWork(Stage):
    def process(self, rows):
        out = []
        for row in rows:
            _busy(self.params.ms_per_row / 1000)
            out.append(
                {
                    **row,
                    "question": f"What is in {row['image_id'][:8]}?",
                    "good": "A shape.",
                    "bad": "A cat.",
                    "good_score": 1.0,
                    "bad_score": 0.0,
                }
            )
        return out


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    a = np.ones((32, 32))
    while time.perf_counter() < end:
        a = a @ a / 32.0


BenchWorkParams.runtime = BenchWork


def register() -> None:
    STAGES[BenchWorkParams.stage_type()] = BenchWorkParams


RECIPE = """\
name: bench
seed: 0
source: {{type: image_folder, path: images}}
stages:
  - type: bench_work
    ms_per_row: {ms}
  - type: select_pairs
    chosen: good
    rejected: bad
    chosen_score: good_score
    rejected_score: bad_score
    method: bench
output: {{store: store}}
"""


def make_corpus(folder: Path, n: int, ms_per_row: float) -> Path:
    """``n`` distinct 64 x 64 PNG scenes and a recipe over them; returns the recipe path."""
    from PIL import Image

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"img-{i:05d}.png")
    recipe = folder / "recipe.yaml"
    recipe.write_text(RECIPE.format(ms=ms_per_row))
    return recipe
