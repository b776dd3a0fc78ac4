"""A Ray build on the vLLM engine: one engine per actor of a model stage, the rows of the in-process vLLM build.
On a cluster of its own, on a worker of its own (tests/conftest.py ONE_WORKER): the test waits on engines starting
in actors for most of its two minutes, and the Ray tests' worker need not wait with it. A second cluster on the
machine is safe: each is stopped by what started it (tests/ray_cluster.py)."""

import sys
from pathlib import Path

import pytest
from ray_cluster import LocalCluster

from prefgen.engine.runner import BuildOptions, run_build

sys.path.insert(0, str(Path(__file__).parents[2] / "models"))
from test_vllm_build import _recipe, _rows  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vllm_cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rv")  # a short name: Ray's socket paths under it must fit in 107 bytes
    with pytest.MonkeyPatch.context() as env, LocalCluster(folder) as cluster:
        env.setenv("RAY_AUTH_MODE", "disabled")
        yield cluster


def test_ray_with_one_engine_per_actor_gives_the_in_process_rows(tmp_path, vllm_cluster):
    recipe = _recipe(tmp_path)
    local = run_build(recipe, BuildOptions(out=tmp_path / "local", shard_size=4, quiet=True))
    options = BuildOptions(
        out=tmp_path / "ray", shard_size=4, quiet=True, executor="ray", address=vllm_cluster.address, workers=1
    )
    ray = run_build(recipe, options)
    assert ray.manifest.stats["executor"] == "ray"
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local") and local.manifest.rows > 0
