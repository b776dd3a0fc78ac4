"""Tiny offline models for the model-runtime tests: built once per session, loaded once per family."""

import os

for _key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "NO_ALBUMENTATIONS_UPDATE"):
    os.environ.setdefault(_key, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

FAMILIES = (
    "llava",
    "qwen2_vl",
    "qwen2_5_vl",
    "idefics3",
    "smolvlm",
    "gemma3",
    "llava_onevision",
    "qwen3_vl",
    "internvl",
    "mistral3",
    "qwen3_5",
)


@pytest.fixture(scope="session", params=FAMILIES)
def vlm(request, tiny_vlm_dir):
    """A loaded tiny VLM, once per family; every test using it runs for every family."""
    from prefgen.models import VLM

    return VLM.load(path=str(tiny_vlm_dir(request.param)), device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def clip_scorer(tiny_clip_dir):
    from prefgen.models import ClipScorer

    return ClipScorer.load(model="tiny", path=str(tiny_clip_dir), device="cpu")


@pytest.fixture(scope="session")
def images():
    """Three small, distinct RGB images of different sizes."""
    return [
        Image.new("RGB", (64, 48), (220, 30, 30)),
        Image.new("RGB", (40, 40), (30, 30, 220)),
        Image.linear_gradient("L").convert("RGB").resize((50, 70)),
    ]


@pytest.fixture
def prompts(images):
    from prefgen.models import Prompt

    return [
        Prompt("What color is this?", images[0]),
        Prompt("Describe the image in detail.", images[1]),
        Prompt("Is there a cat?", images[2]),
    ]
