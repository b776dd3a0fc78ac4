"""Loading models from the recipe's settings, and the one-line errors when they are not here."""

import subprocess
import sys

import pytest

from prefgen.core.errors import PrefgenError
from prefgen.models import VLM
from prefgen.models.config import VLMConfig


def test_hub_model_not_available_offline_says_how_to_download_it():
    with pytest.raises(PrefgenError) as error:
        VLM.load(VLMConfig(id="nobody/no-such-vlm", revision="abc123"))
    message = str(error.value)
    assert "\n" not in message
    assert "hf download nobody/no-such-vlm --revision abc123" in message and "`path:`" in message


def test_missing_local_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(PrefgenError, match="does not exist"):
        VLM.load(path=str(tmp_path / "absent"))


def test_relative_paths_resolve_from_the_recipe_folder(tiny_vlm_dir):
    folder = tiny_vlm_dir("smolvlm")
    vlm = VLM.load(VLMConfig(path=folder.name, device="cpu"), base_dir=folder.parent)
    assert type(vlm.model).__name__ == "SmolVLMForConditionalGeneration"
    assert vlm.eos_ids == {vlm.tokenizer.convert_tokens_to_ids("<end_of_utterance>")}


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_the_package_and_its_cli_does_not_import_torch():
    result = _run("import sys, prefgen.models, prefgen.cli.models; print('torch' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_shim_lets_torchvision_and_open_clip_import_on_cpu_torch():
    result = _run("import prefgen.models, torchvision, open_clip, torchvision.transforms.v2; print('ok')")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_shim_is_a_no_op_when_the_ops_already_exist():
    code = (
        "import torch\n"
        "lib = torch.library.Library('torchvision', 'DEF')\n"
        "lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')\n"
        "lib.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')\n"
        "from prefgen._compat import tvshim as _tvshim\n"
        "_tvshim.install()\n"
        "import torchvision\n"
        "print(_tvshim._library is None)\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("True")
