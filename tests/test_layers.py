"""The layers hold: `lint-imports` keeps the contracts in pyproject.toml, and breaks them when a module imports
upward or closes a cycle (checked on a copy of the package with one import added)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import prefgen

ROOT = Path(__file__).parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def lint(root: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--config", str(config), "--no-cache"], cwd=root, env=env, capture_output=True, text=True
    )


def test_the_package_keeps_every_contract():
    result = lint(ROOT, ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    "module, line, broken",
    [
        # an upward import, hidden inside a function as the old code did
        ("models/images.py", "def _late():\n    from prefgen.engine import runner\n", "Layers:"),
        ("stages/base.py", "def _late():\n    import prefgen.store.folder\n", "touch storage"),
        ("shapes/world.py", "def _late():\n    from prefgen.store import query\n", "touch storage"),
        ("store/folder.py", "from prefgen.models import images\n", "Layers:"),
        ("stages/csr/tree.py", "def _late():\n    from prefgen.stages.csr import stage\n", "No import cycles"),
    ],
)
def test_an_upward_import_or_a_cycle_breaks_a_contract(tmp_path, module, line, broken):
    shutil.copytree(
        Path(prefgen.__file__).parent,
        tmp_path / "prefgen",
        ignore=shutil.ignore_patterns("__pycache__", "checkpoints"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "prefgen" / module
    path.write_text(path.read_text() + "\n\n" + line)
    result = lint(tmp_path, tmp_path / "pyproject.toml")
    assert result.returncode != 0
    assert any(broken in row and "BROKEN" in row for row in result.stdout.splitlines()), result.stdout
