"""Issue 28 (smaller items): the rows' `model` column never carries this machine's absolute folders."""

import pytest

from prefgen.engine.runner import _model_label
from prefgen.models.config import VLMConfig
from prefgen.recipe.model import Models


class _Recipe:
    def __init__(self, **vlm):
        self.models = Models(vlm=VLMConfig(**vlm))


@pytest.mark.parametrize(
    ("vlm", "label"),
    [
        ({"path": "/home/me/runs/csr/round-2/model"}, "round-2/model"),
        ({"path": "../prefgen/shapes/checkpoints/shapes-vlm"}, "../prefgen/shapes/checkpoints/shapes-vlm"),
        ({"id": "llava-hf/llava-1.5-7b-hf", "revision": "a1b2"}, "llava-hf/llava-1.5-7b-hf@a1b2"),
        ({"id": "llava-hf/llava-1.5-7b-hf"}, "llava-hf/llava-1.5-7b-hf@main"),
    ],
)
def test_the_model_column(vlm, label):
    assert _model_label(_Recipe(**vlm)) == label
