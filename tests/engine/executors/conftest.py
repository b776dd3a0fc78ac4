"""One Ray cluster for the whole test session, on one worker.

tests/conftest.py keeps every test of tests/engine/executors/test_ray.py on one xdist worker (``ONE_WORKER``); the
fixture checks it, since two workers each with a cluster is what once let one worker's teardown kill the other's."""

import os

import pytest
from ray_cluster import LocalCluster


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory, request):
    """A two-CPU head node (``ray start --head``, as a user starts one), stopped at the end of the session by the
    process that started it. Tests join it at ``ray_cluster.address``."""
    _claim_for_this_worker(tmp_path_factory, request.config)
    with pytest.MonkeyPatch.context() as env, LocalCluster(tmp_path_factory.mktemp("ray")) as cluster:
        env.setenv("RAY_AUTH_MODE", "disabled")  # the drivers the tests start, in-process or not, as the cluster
        yield cluster


def _claim_for_this_worker(tmp_path_factory, config) -> None:
    """Fail the tests of a second worker that asks for a cluster in the same run, naming the worker that has one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:  # no workers: one process, one cluster
        return
    claim = tmp_path_factory.getbasetemp().parent / f"ray-cluster-{config.workerinput['testrunuid']}"
    try:
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        pytest.fail(f"the Ray tests run on two workers: {claim.read_text()} has the session's cluster, {worker} too")
    with os.fdopen(fd, "w") as f:
        f.write(worker)
