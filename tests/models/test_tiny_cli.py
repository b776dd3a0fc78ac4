"""`prefgen models tiny`: tiny offline models that reload through the same Auto classes as real ones."""

import json

import pytest
from click.testing import CliRunner

from prefgen.cli.models import models

from .conftest import FAMILIES

EXPECTED_CLASSES = {
    "llava": "LlavaForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "idefics3": "Idefics3ForConditionalGeneration",
    "smolvlm": "SmolVLMForConditionalGeneration",
    "gemma3": "Gemma3ForConditionalGeneration",
    "llava_onevision": "LlavaOnevisionForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "internvl": "InternVLForConditionalGeneration",
    "mistral3": "Mistral3ForConditionalGeneration",
    "qwen3_5": "Qwen3_5ForConditionalGeneration",
}


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_family_reloads_through_the_auto_classes(tmp_path, family):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    result = CliRunner().invoke(models, ["tiny", "--family", family, "--out", str(tmp_path / family)])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / family) in result.output
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / family)
    processor = AutoProcessor.from_pretrained(tmp_path / family)
    assert type(model).__name__ == EXPECTED_CLASSES[family]
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert processor.chat_template and processor.tokenizer.padding_side == "left"
    assert (tmp_path / family / "README.md").is_file()


def test_tiny_models_are_deterministic(tmp_path):
    from prefgen.models.tiny.families import build_tiny_vlm

    first = build_tiny_vlm("llava", tmp_path / "a")
    second = build_tiny_vlm("llava", tmp_path / "b")
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()


def test_tiny_clip_is_an_open_clip_local_dir(tmp_path):
    from prefgen.models import ClipScorer

    result = CliRunner().invoke(models, ["tiny", "--clip", "--out", str(tmp_path / "clip")])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "clip" / "open_clip_config.json").read_text())
    assert config["model_cfg"]["text_cfg"]["context_length"] == 77
    scorer = ClipScorer.load(model="tiny", path=str(tmp_path / "clip"), device="cpu")
    assert sum(p.numel() for p in scorer.model.parameters()) < 1_000_000


def test_family_all_writes_one_folder_each(tmp_path):
    result = CliRunner().invoke(models, ["tiny", "--family", "all", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FAMILIES)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "exactly one of --family or --clip"),
        (["--family", "llava", "--clip"], "exactly one of --family or --clip"),
        (["--family", "gpt"], "Invalid value for '--family'"),
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path, args, message):
    result = CliRunner().invoke(models, ["tiny", *args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and message in result.output


def test_a_non_empty_folder_needs_force(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(models, ["tiny", "--family", "llava", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--force" in result.output
    forced = CliRunner().invoke(models, ["tiny", "--family", "llava", "--out", str(tmp_path), "--force"])
    assert forced.exit_code == 0 and (tmp_path / "keep.txt").exists()
