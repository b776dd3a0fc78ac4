"""`prefgen build --executor ray`: the same rows as in-process whatever the number of workers, caches and finished
shards shared between executors, a driver killed with `kill -9` and a worker killed mid-build both recovered from.

Runs against a real local Ray cluster (`ray start --head`, two CPUs) that every test here joins, one for the session
(tests/ray_cluster.py), stopped by the process that started it and leaving every other Ray of the machine alone."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray_cluster import LocalCluster, alive, free_port
from seva_recipe import seva_recipe

from prefgen.engine.runner import BuildOptions, run_build  # noqa: E402
from prefgen.store.folder import Store  # noqa: E402

ROOT = Path(__file__).parents[3]
VLM = ROOT / "prefgen" / "shapes" / "checkpoints" / "shapes-vlm"
PREFGEN = [sys.executable, "-m", "prefgen.cli"]

# All on one worker with -n (tests/conftest.py, ONE_WORKER); those with a cluster or a build are slow.


@pytest.fixture
def cluster(ray_cluster):
    """The session's cluster (tests/engine/executors/conftest.py): its address."""
    return ray_cluster.address


@pytest.fixture
def recipe(tmp_path):
    """A SeVa recipe over 8 example scenes and one file that is not an image (a counted drop)."""
    return seva_recipe(tmp_path, "recipe.yaml", name="ray-seva", broken=True)


def _rows(store: Path, version: str = "v1") -> list[dict]:
    import pyarrow.parquet as pq

    table = pq.read_table(sorted((store / "data" / version).glob("*.parquet")))
    rows = [{k: v for k, v in row.items() if k != "created_at"} for row in table.to_pylist()]
    return sorted(rows, key=lambda row: row["id"])


def _check_ray_build(store: Path, log: Path, local, workers: int) -> None:
    """A Ray build's rows, drops, stats and shard events against the in-process build ``local`` (5 shards of 2)."""
    from prefgen.store.folder import Store

    manifest = Store(store).manifest("v1")
    assert _rows(store) == _rows(local.store)
    assert manifest.rows == local.manifest.rows > 0
    assert manifest.drops == local.manifest.drops and manifest.drops["not_an_image"] == 1  # the broken file
    assert manifest.rows + sum(manifest.drops.values()) == 9
    assert manifest.stats["executor"] == "ray" and manifest.stats["workers"] == workers
    assert manifest.stats["cluster"]["CPU"] == 2
    assert manifest.stats["stages"]["answer"]["rows_seen"] == 8
    assert all(image["bytes"] for row in _rows(store) for image in row["images"])
    events = [json.loads(line) for line in log.read_text().splitlines()]
    done = {(e["stage"], e["shard"]) for e in events if e["event"] == "stage_done"}
    assert done == {
        (stage, shard)
        for stage in ("source", "answer", "corrupt", "answer_corrupted", "select_pairs")
        for shard in range(5)
    }
    assert sorted(e["shard"] for e in events if e["event"] == "shard_done") == list(range(5))


@pytest.mark.slow
def test_ray_rows_equal_in_process_rows_for_one_and_two_workers_and_the_caches_serve_both(recipe, tmp_path, cluster):
    """Two workers in-process (``run_build``), one from the command line with ``-q`` (which prints its result only
    and logs Ray's lines and the workers'): the in-process build's rows. Then the cache the Ray build wrote serves an
    in-process build and a Ray build of the same store, with nothing computed."""
    local = run_build(recipe, BuildOptions(out=tmp_path / "local", shard_size=2, quiet=True))
    assert local.manifest.stats["executor"] == "local" and local.manifest.stats["workers"] == 1
    store, ray = tmp_path / "ray-2", dict(executor="ray", address=cluster)
    first = run_build(
        recipe, BuildOptions(out=store, shard_size=2, quiet=True, workers=2, log_json=tmp_path / "ray-2.jsonl", **ray)
    )
    _check_ray_build(store, tmp_path / "ray-2.jsonl", local, workers=2)
    assert sum(first.computed.values()) == 5 * 5  # five steps over five shards

    # one worker, from the command line, quiet; the bars a user sees are forwarded from the workers
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "0"}
    command = [*PREFGEN, "build", str(recipe), "-q", "--shard-size", "2", "--executor", "ray", "--address", cluster]
    command += ["--workers", "1", "--log-json", str(tmp_path / "ray-1.jsonl")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
    assert result.stdout.startswith(f"published v1 in {tmp_path}/store: ") and result.stdout.count("\n") == 1
    _check_ray_build(tmp_path / "store", tmp_path / "ray-1.jsonl", local, workers=1)
    (log,) = (tmp_path / "store" / ".prefgen" / "logs").glob("build-*.log")
    text = log.read_text()
    assert "Loading weights" in text and "pid=" in text  # a worker's line, as Ray forwards it
    assert "memory per worker" not in text  # every step asks for the memory it uses: Ray's warning stays quiet

    again = run_build(recipe, BuildOptions(out=store, shard_size=2, quiet=True, version="v2"))
    assert sum(again.computed.values()) == 0 and sum(again.cached.values()) == 25
    back = run_build(recipe, BuildOptions(out=store, shard_size=2, quiet=True, version="v3", workers=1, **ray))
    assert sum(back.computed.values()) == 0 and sum(back.cached.values()) == 25
    assert _rows(store, "v1") == _rows(store, "v2") == _rows(store, "v3")


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import build_stages
build_stages.register()
from prefgen.cli.main import main
sys.argv = ["prefgen", "build", {recipe!r}, "--quiet", "--shard-size", "2", "--batch-size", "1", "--executor", "ray",
            "--address", {address!r}, "--workers", "1", "--log-json", {log!r}]
main()
"""


@pytest.mark.slow
def test_killed_driver_resumes_from_finished_shards(tmp_path, cluster, toy_stages):
    """kill -9 of the driver after its first finished shard; the same command then continues the draft and
    publishes exactly what an uninterrupted in-process build publishes."""
    from engine.test_runner import TESTS, make_images, published_rows, write_recipe

    make_images(tmp_path / "images", 12)
    recipe = write_recipe(tmp_path, sleep=0.4, two="true")  # about a second per shard
    run_build(recipe, BuildOptions(out=tmp_path / "reference", shard_size=2, quiet=True))
    script = DRIVER.format(tests=str(TESTS), recipe=str(recipe), address=cluster, log=str(tmp_path / "first.jsonl"))
    driver = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    drafts = tmp_path / "store" / ".prefgen" / "drafts"
    deadline = time.monotonic() + 300
    while not list(drafts.glob("*/shard-*.parquet")):
        assert driver.poll() is None, driver.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "no shard finished in time"
        time.sleep(0.05)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    finished = len(list(drafts.glob("*/shard-*.parquet")))
    assert 1 <= finished < 6
    assert Store(tmp_path / "store").versions() == []
    script = script.replace("first.jsonl", "rerun.jsonl")
    rerun = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "published v1" in rerun.stdout
    events = [json.loads(line) for line in (tmp_path / "rerun.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "shard_done" for e in events) == 6 - finished  # only the unfinished shards ran
    assert published_rows(tmp_path / "store") == published_rows(tmp_path / "reference")
    assert Store(tmp_path / "store").manifest("v1").stats["executor"] == "ray"


@pytest.mark.slow
def test_a_worker_killed_mid_build_is_replaced(recipe, tmp_path, cluster, ray_cluster):
    """A model stage's actor is killed while the build runs: Ray starts another, the shard it held is retried, and
    the build's rows are still those of an in-process build."""
    run_build(recipe, BuildOptions(out=tmp_path / "reference", shard_size=2, quiet=True))
    command = [
        *PREFGEN,
        "build",
        str(recipe),
        "--shard-size",
        "2",
        "-q",
        "--executor",
        "ray",
        "--address",
        cluster,
        "--workers",
        "1",
    ]
    driver = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not ray_cluster.processes("_StageActor"):  # this cluster's actors, never another Ray's
        assert driver.poll() is None, driver.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "no stage actor started in time"
        time.sleep(0.1)
    time.sleep(1.0)  # inside its start-up or its first shard
    os.kill(ray_cluster.processes("_StageActor")[0], signal.SIGKILL)
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, err[-2000:]
    assert _rows(tmp_path / "store") == _rows(tmp_path / "reference")


@pytest.fixture
def toy_stages(monkeypatch):
    import build_stages

    from prefgen.recipe.catalogue import STAGES

    for name, cls in build_stages.TOY_STAGES.items():
        monkeypatch.setitem(STAGES, name, cls)


@pytest.mark.slow
def test_a_failing_row_is_the_same_counted_drop_on_ray(tmp_path, cluster, toy_stages):
    from engine.test_runner import make_images, published_rows, write_recipe

    make_images(tmp_path / "images", 30)
    run_build(write_recipe(tmp_path), BuildOptions(out=tmp_path / "probe", quiet=True))
    victim = published_rows(tmp_path / "probe")[0]["image_id"]
    recipe = write_recipe(tmp_path, fail_on=victim[:10])
    local = run_build(recipe, BuildOptions(out=tmp_path / "local", quiet=True, batch_size=8, shard_size=8))
    remote = run_build(
        recipe,
        BuildOptions(
            out=tmp_path / "ray", quiet=True, batch_size=8, shard_size=8, executor="ray", address=cluster, workers=2
        ),
    )
    assert remote.manifest.drops == local.manifest.drops == {"stage_error": 1}
    assert remote.manifest.stats["stages"]["toy_answer"]["errors"] == 1
    assert published_rows(tmp_path / "ray") == published_rows(tmp_path / "local")
    rejects = "SELECT row_id, stage, reason, detail FROM rejects ORDER BY row_id"
    from prefgen.store.query import run_query

    assert (
        run_query(Store(tmp_path / "ray"), rejects).to_pylist()
        == run_query(Store(tmp_path / "local"), rejects).to_pylist()
    )


@pytest.mark.slow
def test_too_many_errors_stop_a_ray_build_with_the_in_process_message(tmp_path, cluster, toy_stages):
    from engine.test_runner import make_images, write_recipe
    from prefgen.core.errors import PrefgenError

    make_images(tmp_path / "images", 24)
    recipe = write_recipe(tmp_path, max_error_rate=0.1)
    recipe.write_text(recipe.read_text().replace("    fail_on: null\n", "    fail_all: true\n"))
    with pytest.raises(
        PrefgenError,
        match=r"stage 'toy_answer' failed on 24 of 24 rows \(more than "
        r"limits.max_error_rate = 0.1\)",
    ):
        run_build(recipe, BuildOptions(quiet=True, batch_size=8, executor="ray", address=cluster))
    assert Store(tmp_path / "store").manifests() == []


def test_memory_requests_follow_the_models_and_fit_the_cluster(recipe):
    from safetensors import safe_open

    from prefgen.engine.executors.memory import WORKER_MEMORY, memory_requests, model_bytes
    from prefgen.engine.shards import StageRun
    from prefgen.recipe import load_recipe

    loaded = load_recipe(recipe)
    weights = model_bytes(loaded.models.vlm, recipe.parent)
    with safe_open(VLM / "model.safetensors", "pt") as f:  # float32 weights loaded as float32: 4 bytes a parameter
        assert weights == sum(4 * math.prod(f.get_slice(name).get_shape()) for name in f.keys()) > 0
    runs = [StageRun(p, None, "") for p in loaded.stages]
    asked = memory_requests(runs, loaded, recipe.parent, 2, 5, {"memory": 64 * 2**30})
    assert asked == {
        "source": WORKER_MEMORY,
        "answer": WORKER_MEMORY + weights,
        "corrupt": WORKER_MEMORY,
        "answer_corrupted": WORKER_MEMORY + weights,
        "select_pairs": WORKER_MEMORY,
    }
    small = memory_requests(runs, loaded, recipe.parent, 2, 5, {"memory": 2 * 2**30})
    actors = 2 * (small["answer"] + small["answer_corrupted"])  # two workers of each model stage, for the build
    held = actors + small["source"] + small["corrupt"] + small["select_pairs"]
    assert held <= 0.9 * 2 * 2**30 and small["answer"] > small["source"]


@pytest.mark.slow
def test_ray_without_a_cluster_at_the_address_is_a_clear_error(recipe, tmp_path):
    result = subprocess.run(
        [*PREFGEN, "build", str(recipe), "-q", "--executor", "ray", "--address", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "cannot reach a Ray cluster" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_stages_asking_for_every_cpu_are_refused_with_the_numbers(recipe, tmp_path, cluster):
    """Two actors of 1 CPU each on a 2-CPU cluster leave nothing for the source: Ray would wait for ever."""
    text = recipe.read_text().replace(
        "    output: clean_answer\n", "    output: clean_answer\n    resources: {num_cpus: 1}\n"
    )
    recipe.write_text(text)
    result = subprocess.run(
        [*PREFGEN, "build", str(recipe), "-q", "--executor", "ray", "--address", cluster, "--workers", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "the stages' workers ask for more than the cluster has: answer 2 x 1 CPU, answer_corrupted 2 x "
        in result.stderr
    )
    assert "the cluster has 2 CPU and 0 GPU" in result.stderr


def test_the_default_shares_always_fit():
    from types import SimpleNamespace

    from prefgen.engine.executors.ray import check_fits
    from prefgen.stages.base import Resources

    def run(label, models=("vlm",), resources=None):
        return SimpleNamespace(params=SimpleNamespace(label=label, models=models, resources=resources))

    runs = [run("answer"), run("corrupt", models=()), run("answer_corrupted"), run("select", models=())]
    for cpus in (1, 2, 16):
        for workers in (1, 2, 8):
            check_fits(runs, workers, cpus / (workers * (len(runs) + 1)), {"CPU": float(cpus)})
    with pytest.raises(Exception, match=r"answer 1 x 1 CPU \+ 1 GPU.* hold 1.4 CPU and 1 GPU.*0 GPU"):
        check_fits(
            [run("answer", resources=Resources(num_gpus=1, num_cpus=1, concurrency=1)), run("answer_corrupted")],
            1,
            0.4,
            {"CPU": 2.0},
        )


@pytest.mark.slow
def test_stopping_a_test_cluster_leaves_another_cluster_running(tmp_path_factory, ray_cluster):
    """The teardown stops the processes its own cluster started and nothing else: the session's cluster (standing in
    for a user's own, or another worker's) still runs tasks after a second cluster on the machine is stopped."""
    session = ray_cluster.descendants()
    with LocalCluster(tmp_path_factory.mktemp("ray")) as other:  # a short path: Ray's sockets live under it
        theirs = other.descendants()
        assert other.processes("raylet") and not set(theirs) & set(session)
    assert theirs and not [pid for pid in theirs if alive(pid)]
    assert all(alive(pid) for pid in ray_cluster.processes("raylet") + ray_cluster.processes("gcs_server"))
    task = "import ray; ray.init(address={!r}); print(ray.get(ray.remote(lambda: 6 * 7).remote()))"
    result = subprocess.run(
        [sys.executable, "-c", task.format(ray_cluster.address)],
        capture_output=True,
        text=True,
        timeout=300,
        env=LocalCluster.env(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "42"
