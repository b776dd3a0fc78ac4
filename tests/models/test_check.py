"""`prefgen models check`: support decided from config, processor and chat template, without loading weights."""

import json
import shutil

import pytest
from click.testing import CliRunner

from prefgen.cli.models import models

from .conftest import FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_every_tiny_family_is_supported(family, tiny_vlm_dir):
    folder = tiny_vlm_dir(family)
    result = CliRunner().invoke(models, ["check", str(folder)])
    assert result.exit_code == 0, result.output
    facts = dict(line.split(":", 1) for line in result.output.splitlines()[:-1])
    facts = {name: value.strip() for name, value in facts.items()}
    assert facts["family"].startswith(f"{family} (") and "tested in prefgen" in facts["family"]
    assert "problem" not in facts and result.output.splitlines()[-1].endswith(": supported by prefgen")
    assert facts["lora targets"].startswith("q_proj") and "vision" not in facts["lora targets"].split(" in ")[1]
    assert facts["chat template"].startswith("present") and facts["image tokens"] != "none found"
    assert "trust_remote_code" not in result.output and f"path: {folder}" in facts["recipe"]
    expected = {"gemma3": "while rows fit", "qwen3_5": "no: prompt"}.get(family, "yes")
    assert facts["prefix reuse"].startswith(expected)


def test_a_template_that_ends_answers_without_eos_is_a_warning(tiny_vlm_dir):
    """llava-1.5's template ends an assistant turn with a space: trl's completions would end with that token. The
    shapes VLM's template ends it with eos, as its SFT did; Qwen's with <|im_end|> and a newline."""
    from pathlib import Path

    warned = CliRunner().invoke(models, ["check", str(tiny_vlm_dir("llava"))])
    assert warned.exit_code == 0 and warned.output.splitlines()[-1].endswith(": supported by prefgen")
    [warning] = [line for line in warned.output.splitlines() if line.startswith("warning: ")]
    assert warning.startswith("warning: the chat template ends an assistant turn with ' ', not the eos token '</s>'")
    for folder in (
        Path(__file__).parents[2] / "prefgen" / "shapes" / "checkpoints" / "shapes-vlm",
        tiny_vlm_dir("qwen2_vl"),
    ):
        result = CliRunner().invoke(models, ["check", str(folder)])
        assert result.exit_code == 0 and "warning" not in result.output


def test_check_reads_no_weights(tiny_vlm_dir, tmp_path):
    folder = tmp_path / "no-weights"
    shutil.copytree(tiny_vlm_dir("llava"), folder)
    (folder / "model.safetensors").unlink()
    result = CliRunner().invoke(models, ["check", str(folder)])
    assert result.exit_code == 0, result.output


def _broken(tiny_vlm_dir, tmp_path, family="qwen2_vl"):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_vlm_dir(family), folder)
    return folder


def _problems(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("problem: ")]


def test_a_folder_without_chat_template_is_one_problem(tiny_vlm_dir, tmp_path):
    folder = _broken(tiny_vlm_dir, tmp_path)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    for name in ("tokenizer_config.json", "processor_config.json"):
        path = folder / name
        if path.exists():
            data = json.loads(path.read_text())
            data.pop("chat_template", None)
            path.write_text(json.dumps(data))
    result = CliRunner().invoke(models, ["check", str(folder)])
    assert result.exit_code == 1
    assert _problems(result.output) == [line for line in _problems(result.output) if "chat template" in line]
    assert len(_problems(result.output)) == 1 and "NOT supported" in result.output


def test_a_folder_without_processor_is_one_problem(tiny_vlm_dir, tmp_path):
    folder = _broken(tiny_vlm_dir, tmp_path)
    for name in ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json"):
        (folder / name).unlink(missing_ok=True)
    result = CliRunner().invoke(models, ["check", str(folder)])
    assert result.exit_code == 1
    problems = _problems(result.output)
    assert len(problems) == 1 and "processor" in problems[0], result.output


def test_an_unknown_architecture_is_one_problem(tiny_vlm_dir, tmp_path):
    folder = _broken(tiny_vlm_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "no_such_vlm"
    (folder / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(models, ["check", str(folder)])
    assert result.exit_code == 1
    problems = _problems(result.output)
    assert len(problems) == 1 and "unknown architecture" in problems[0], result.output


def test_remote_code_is_named_not_run(tiny_vlm_dir, tmp_path):
    folder = _broken(tiny_vlm_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="custom_vlm", auto_map={"AutoConfig": "configuration_custom.CustomConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(models, ["check", str(folder)])
    assert result.exit_code == 1 and "trust_remote_code: true" in result.output


def test_a_hub_id_not_in_the_cache_or_a_missing_folder_is_one_problem(tmp_path):
    result = CliRunner().invoke(models, ["check", "nobody/no-such-vlm", "--revision", "abc"])
    assert result.exit_code == 1
    assert len(_problems(result.output)) == 1, result.output
    missing = CliRunner().invoke(models, ["check", str(tmp_path / "absent")])
    assert missing.exit_code == 1 and _problems(missing.output) == [
        f"problem: no model folder at {tmp_path / 'absent'}"
    ]
