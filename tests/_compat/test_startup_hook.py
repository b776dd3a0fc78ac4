"""Scripts that never import prefgen still get the torchvision shim, through the ``prefgen-tvshim.pth`` start-up hook.

The PyPI torchvision 0.28.0 is a CUDA build whose compiled ops do not load on CPU torch, so without the hook a plain
``import torchvision`` (and with it open_clip, timm, transformers' image processors and trl's DPOTrainer) dies with
"operator torchvision::nms does not exist". Each consumer runs in a fresh interpreter of this environment that never
imports prefgen; ``scripts/setup.sh`` installs the hook (``python -m prefgen._compat.startup_hook install``).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from prefgen._compat import startup_hook

REAL_PTH = Path(sysconfig.get_paths()["purelib"]) / startup_hook.PTH_NAME
NO_PREFGEN = (
    "\nimport sys\n"
    "assert 'prefgen' not in sys.modules, sorted(m for m in sys.modules if m.startswith('prefgen'))\n"
    "print('prefgen not imported')\n"
)


def _python(code: str, cwd: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _plain(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a plain interpreter of this environment, then check that prefgen was never imported."""
    return _python(textwrap.dedent(code) + NO_PREFGEN, cwd)


def _ok(result: subprocess.CompletedProcess) -> None:
    hint = (
        f"is the start-up hook installed? `{sys.executable} -m prefgen._compat.startup_hook status` "
        f"(scripts/setup.sh installs it)"
    )
    assert result.returncode == 0, f"{hint}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.stdout.rstrip().endswith("prefgen not imported"), result.stdout
    assert "torchvision::nms does not exist" not in result.stderr
    assert "shim failed" not in result.stderr


@pytest.mark.slow
def test_transformers_image_processor_and_torchvision_v2(tmp_path):
    result = _plain(
        f"""
        from PIL import Image
        from transformers import AutoProcessor, CLIPImageProcessor

        CLIPImageProcessor(size={{"shortest_edge": 32}}, crop_size={{"height": 32, "width": 32}}).save_pretrained(
            {str(tmp_path / "processor")!r})
        processor = AutoProcessor.from_pretrained({str(tmp_path / "processor")!r})
        pixels = processor(images=Image.new("RGB", (48, 40), "red"), return_tensors="pt")["pixel_values"]
        assert tuple(pixels.shape) == (1, 3, 32, 32), pixels.shape
        assert "TorchvisionBackend" in [c.__name__ for c in type(processor).__mro__], type(processor).__mro__

        import torch
        from torchvision.transforms import v2
        out = v2.Resize((8, 8))(torch.zeros(3, 16, 16))
        assert tuple(out.shape) == (3, 8, 8)
        print("transformers ok")
    """,
        tmp_path,
    )
    _ok(result)
    assert "transformers ok" in result.stdout


@pytest.mark.slow
def test_open_clip_and_timm(tmp_path):
    result = _plain(
        """
        import open_clip
        import timm
        import torch
        from PIL import Image

        config = {"embed_dim": 16,
                  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1}}
        model = open_clip.CLIP(**config).eval()
        preprocess = open_clip.image_transform(32, is_train=False)
        tokenizer = open_clip.get_tokenizer("ViT-B-32")
        with torch.no_grad():
            image = model.encode_image(preprocess(Image.new("RGB", (50, 40), "blue")).unsqueeze(0))
            text = model.encode_text(tokenizer(["a blue square"]))
        assert tuple(image.shape) == tuple(text.shape) == (1, 16)
        print("open_clip ok")
    """,
        tmp_path,
    )
    _ok(result)
    assert "open_clip ok" in result.stdout


@pytest.mark.slow
def test_trl_dpo_trainer(tmp_path):
    result = _plain(
        """
        from trl import DPOConfig, DPOTrainer
        print(DPOTrainer.__name__, DPOConfig.__name__)
    """,
        tmp_path,
    )
    _ok(result)
    assert "DPOTrainer DPOConfig" in result.stdout


@pytest.mark.slow
def test_importing_prefgen_after_the_hook_adds_no_second_finder(tmp_path):
    result = _python(
        """
        import sys
        import prefgen, prefgen.models, prefgen.shapes
        from prefgen._compat import tvshim as _tvshim

        print(type(sys.meta_path[0]).__name__)
        print(sum(getattr(f, "prefgen_tvshim_finder", False) is True for f in sys.meta_path))
        import torchvision
        # the hook ran the shim prefgen had already imported: one state, no stand-alone copy
        print(_tvshim._applied, "_prefgen_tvshim_startup" in sys.modules)
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [startup_hook.HOOK_CLASS, "1", "True", "False"], result.stdout


@pytest.mark.slow
def test_hook_defines_nothing_when_the_ops_already_exist(tmp_path):
    result = _plain(
        """
        import sys
        import torch
        library = torch.library.Library("torchvision", "DEF")  # stands in for a torchvision whose _C loads
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import torchvision
        shim = sys.modules["_prefgen_tvshim_startup"]
        print(shim._applied, shim._library is None)
    """,
        tmp_path,
    )
    _ok(result)
    assert result.stdout.split()[:2] == ["True", "True"], result.stdout


def _bare(code: str, site_dir: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    """``python -S``: this environment's packages on sys.path, but none of its .pth files (so neither the real hook
    nor the editable prefgen install); ``site_dir``'s .pth files only when given."""
    setup = f"import sys, site\nsys.path.append({sysconfig.get_paths()['purelib']!r})\n"
    if site_dir is not None:
        setup += f"site.addsitedir({str(site_dir)!r})\n"
    return _python(setup + textwrap.dedent(code) + NO_PREFGEN, cwd, "-S")


@pytest.mark.slow
def test_the_pth_file_alone_arms_a_bare_interpreter(tmp_path):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    install = _python(
        f"from prefgen._compat import startup_hook; print(startup_hook.install({str(site_dir)!r}))", tmp_path
    )
    assert install.returncode == 0, install.stderr
    code = """
        import torch, torchvision
        from torchvision.transforms import v2
        print(type(sys.meta_path[0]).__name__)
    """
    without = _bare(code, None, tmp_path)
    if without.returncode == 0:
        pytest.skip("torchvision's own compiled ops load here: there is nothing for the shim to fix")
    assert "torchvision::nms does not exist" in without.stderr, without.stderr  # the failure the hook prevents
    armed = _bare(code, site_dir, tmp_path)
    assert armed.returncode == 0, armed.stderr
    assert armed.stdout.split()[0] == startup_hook.HOOK_CLASS, armed.stdout
    assert armed.stdout.rstrip().endswith("prefgen not imported")


def test_a_pth_file_whose_shim_is_gone_arms_nothing(tmp_path):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / startup_hook.PTH_NAME).write_text(startup_hook.pth_text(tmp_path / "gone" / "_compat/tvshim.py"))
    result = _bare("print(any(getattr(f, 'prefgen_tvshim_finder', False) for f in sys.meta_path))", site_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.split()[0] == "False"


def test_install_command_writes_into_target_and_is_idempotent(tmp_path):
    real_before = REAL_PTH.stat().st_mtime_ns if REAL_PTH.exists() else None

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "prefgen._compat.startup_hook", *args, "--target", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    pth = tmp_path / startup_hook.PTH_NAME
    assert command("status").returncode == 1
    first = command("install")
    assert first.returncode == 0, first.stderr
    assert f"wrote {pth}" in first.stdout
    text = pth.read_text(encoding="utf-8")
    assert [line for line in text.splitlines() if line.startswith("import ")] == [text.splitlines()[-1]]
    assert str(Path(startup_hook.shim_path())) in text
    second = command("install")
    assert second.returncode == 0, second.stderr
    assert "already current" in second.stdout
    assert pth.read_text(encoding="utf-8") == text
    status = command("status")
    assert status.returncode == 0 and f"{pth}: current" in status.stdout
    pth.write_text(text.replace("_compat/tvshim.py", "_old_shim.py"), encoding="utf-8")
    assert "stale" in command("status").stdout
    assert f"updated {pth}" in command("install").stdout and pth.read_text(encoding="utf-8") == text
    assert f"removed {pth}" in command("uninstall").stdout and not pth.exists()
    again = command("uninstall")
    assert again.returncode == 0 and "nothing to remove" in again.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file left behind
    assert (REAL_PTH.stat().st_mtime_ns if REAL_PTH.exists() else None) == real_before


def test_install_into_a_missing_directory_is_an_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "prefgen._compat.startup_hook", "install", "--target", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "is not a directory" in result.stderr and not (tmp_path / "absent").exists()
