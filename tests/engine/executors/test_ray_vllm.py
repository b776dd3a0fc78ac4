"""A Ray build on the vLLM engine: one engine per actor of a model stage, the rows of the in-process vLLM build.
On the session's Ray cluster (tests/engine/executors/conftest.py), on the Ray tests' worker."""

import sys
from pathlib import Path

import pytest

from prefgen.engine.runner import BuildOptions, run_build

sys.path.insert(0, str(Path(__file__).parents[2] / "models"))
from test_vllm_build import _recipe, _rows  # noqa: E402

pytestmark = pytest.mark.slow


def test_ray_with_one_engine_per_actor_gives_the_in_process_rows(tmp_path, ray_cluster):
    recipe = _recipe(tmp_path)
    local = run_build(recipe, BuildOptions(out=tmp_path / "local", shard_size=4, quiet=True))
    options = BuildOptions(
        out=tmp_path / "ray", shard_size=4, quiet=True, executor="ray", address=ray_cluster.address, workers=1
    )
    ray = run_build(recipe, options)
    assert ray.manifest.stats["executor"] == "ray"
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local") and local.manifest.rows > 0
