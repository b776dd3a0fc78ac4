"""A version's manifest names torch's CPU kernels and threads when a stage ran torch: what a rerun must match to give
the same pairs (docs/loops.md, "Reruns")."""

import sys

import build_stages
import pytest
from PIL import Image

from prefgen.engine.fingerprint import torch_kernels
from prefgen.engine.runner import BuildOptions, run_build
from prefgen.recipe.catalogue import STAGES

RECIPE = """\
name: toy
seed: 7
source: {type: image_folder, path: images}
stages:
  - type: toy_question
  - type: toy_answer
  - type: toy_pairs
output: {store: store, message: toy build}
"""


@pytest.fixture(autouse=True)
def toy_stages(monkeypatch):
    for name, cls in build_stages.TOY_STAGES.items():
        monkeypatch.setitem(STAGES, name, cls)


def test_the_manifest_names_torchs_kernels_and_threads(tmp_path):
    import torch

    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "images" / "a.png")
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    stats = run_build(tmp_path / "recipe.yaml", BuildOptions(quiet=True)).manifest.stats
    assert stats["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert stats["torch_threads"] == torch.get_num_threads()


def test_nothing_is_named_without_torch(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert torch_kernels() == {}
