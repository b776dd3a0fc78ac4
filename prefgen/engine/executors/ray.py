"""Builds on a Ray cluster (``prefgen build --executor ray``), through Ray Data.

The unit of work is the shard, as in the in-process runner: the pending shards become a dataset with one record
per shard, and each step of the recipe is a ``map_batches`` over it: the source read and the stages without a model
as Ray tasks, each stage with a model as a pool of actors that load the model once and then take shard after shard.
A worker runs a step with the very code the in-process runner uses (``ShardWorker.read_shard`` / ``run_step``), against
the store's stage cache, so the rows, drops and cache entries are the same whichever executor made them, and a build
started on one executor can be continued on the other. Finished shards stream back to the driver, which writes them
to the draft as they come (in whatever order Ray finishes them; a shard's place is its index), so a driver killed
mid-build loses only the shards in flight.

Workers report what each step did (rows in and out, drops by reason, computed or cached, seconds, errors) inside the
shard's record; the driver turns those into the progress bars, ``--log-json`` events and the manifest's statistics.
A worker that dies is restarted and its shard retried by Ray (Ray Data restarts a dead actor and retries its call
without limit, and retries a task that died three times); a row that fails inside a stage is a counted drop, as
in-process.

Each step's workers ask Ray for the memory they will use (``prefgen.engine.executors.memory``), so that Ray places no
more workers on a node than its memory holds and its warning about workers using more memory than they requested
stays quiet. Pools never have more workers than there are shards to hand them.

What Ray, the libraries and the workers print reaches the driver and goes, with the rest of the build's third-party
output, to the build's log file (``prefgen.engine.logs``); the console keeps prefgen's bars and messages.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prefgen.core.errors import PrefgenError
from prefgen.engine.cache import StageCache
from prefgen.engine.executors.memory import memory_requests
from prefgen.engine.progress import SOURCE, Reporter
from prefgen.engine.shards import ShardState, ShardWorker, StageRun

#: Settings the workers need to see as the driver does (credentials are never passed: workers bring their own).
FORWARDED_ENV = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HOME",
    "HF_HUB_CACHE",
    "NO_ALBUMENTATIONS_UPDATE",
    "PREFGEN_CACHE",
    "HF_HUB_DISABLE_PROGRESS_BARS",
)


@dataclass(frozen=True)
class _Context:
    """What a worker needs to run a step as the driver would: the recipe (already with its overrides and model
    path), where relative paths start, the build's options, the source's fingerprint and the stage cache's folder."""

    recipe: Any
    base: Path
    options: Any
    source_fp: str
    fingerprints: dict[str, str]
    cache_root: Path


class RayExecutor:
    """Runs the pending shards of a build on Ray and yields them back as they finish."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None):
        self.address, self.requested, self.workers = address, workers, workers or 1
        self.cluster: dict[str, float] = {}

    def describe(self) -> dict[str, Any]:
        return {
            "executor": self.name,
            "workers": self.workers,
            "cluster": {k: v for k, v in self.cluster.items() if k in ("CPU", "GPU")},
        }

    def run(self, builder, pending: list[tuple[int, list]]):
        if not pending:
            return
        ray, connected_here = _connect(self.address)
        try:
            self.cluster = dict(ray.cluster_resources())
            cpus = max(int(self.cluster.get("CPU", 1)), 1)
            self.workers = self.requested or cpus
            dataset = self._pipeline(ray, builder, pending, cpus)
            runs = {run.params.label: run for run in builder.runs}
            for batch in dataset.iter_batches(batch_size=1, batch_format="pyarrow"):
                for payload in batch.column("payload").to_pylist():
                    state = pickle.loads(payload)
                    if state.error is not None:
                        raise PrefgenError(state.error)
                    _merge(builder, runs, state)
                    yield state.index, state.rows, state.rejects
        finally:
            if connected_here:  # inside the build's log capture: what Ray still forwards goes to the log
                ray.shutdown()

    def _pipeline(self, ray, builder, pending, cpus: int):
        import ray.data

        context = _Context(
            builder.recipe,
            builder.base,
            replace(builder.options, quiet=True, log_json=None),
            builder.source_fp,
            {r.params.label: r.fingerprint for r in builder.runs},
            builder.cache.root,
        )
        share = cpus / (self.workers * (len(builder.runs) + 1))  # an equal share per step and worker by default
        check_fits(builder.runs, self.workers, share, self.cluster)
        memory = memory_requests(builder.runs, builder.recipe, builder.base, self.workers, len(pending), self.cluster)
        records = [{"shard": k, "payload": pickle.dumps(items)} for k, items in pending]
        dataset = ray.data.from_items(records, override_num_blocks=len(records))
        dataset = dataset.map_batches(
            _read_source,
            fn_kwargs={"context": context},
            batch_size=1,
            batch_format="pyarrow",
            num_cpus=share,
            memory=memory[SOURCE],
            compute=ray.data.TaskPoolStrategy(size=min(self.workers, len(pending))),
        )
        for run in builder.runs:
            res = run.params.resources
            num_cpus = (res.num_cpus if res else None) or share
            size = min((res.concurrency if res else None) or self.workers, len(pending))
            common = dict(
                batch_size=1,
                batch_format="pyarrow",
                num_cpus=num_cpus,
                num_gpus=(res.num_gpus if res else None) or 0,
                memory=memory[run.params.label],
            )
            if run.params.models:  # a model: actors that load it once
                dataset = dataset.map_batches(
                    _StageActor,
                    fn_constructor_kwargs={
                        "context": context,
                        "label": run.params.label,
                        "threads": max(1, int(num_cpus)),
                    },
                    compute=ray.data.ActorPoolStrategy(size=size),
                    **common,
                )
            else:
                dataset = dataset.map_batches(
                    _run_stage_task,
                    fn_kwargs={"context": context, "label": run.params.label},
                    compute=ray.data.TaskPoolStrategy(size=size),
                    **common,
                )
        return dataset


def check_fits(runs, workers: int, share: float, cluster: dict[str, float]) -> None:
    """Refuse, with the numbers, stages whose actors would hold every CPU (or more GPUs than there are): Ray would
    wait for ever for room to run the source and the stages without a model."""
    cpus, gpus = cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
    held_cpus = held_gpus = 0.0
    parts = []
    for run in runs:
        if not run.params.models:
            continue
        res = run.params.resources
        size = (res.concurrency if res else None) or workers
        each_cpu, each_gpu = (res.num_cpus if res else None) or share, (res.num_gpus if res else None) or 0.0
        held_cpus, held_gpus = held_cpus + size * each_cpu, held_gpus + size * each_gpu
        parts.append(f"{run.params.label} {size} x {each_cpu:g} CPU" + (f" + {each_gpu:g} GPU" if each_gpu else ""))
    if held_cpus + share > cpus + 1e-9 or held_gpus > gpus + 1e-9:
        raise PrefgenError(
            f"the stages' workers ask for more than the cluster has: {', '.join(parts)} hold {held_cpus:g} CPU"
            f"{f' and {held_gpus:g} GPU' if held_gpus else ''} for the whole build, and the source needs "
            f"{share:.3g} CPU beside them; the cluster has {cpus:g} CPU and {gpus:g} GPU. Lower `resources` "
            "(num_cpus, num_gpus, concurrency) or --workers"
        )


# ---------------------------------------------------------------------------------------------------- workers


def _worker_builder(context: _Context, labels: tuple[str, ...] = ()) -> ShardWorker:
    """A quiet ``ShardWorker`` over the stages ``labels``, reading and writing the store's stage cache."""
    runs = [
        StageRun(p, p.runtime(p, context.recipe.seed), context.fingerprints[p.label])
        for p in context.recipe.stages
        if p.label in labels
    ]
    reporter = Reporter(quiet=True)
    reporter.stages(list(labels), 0)
    builder = ShardWorker(context.recipe, context.base, runs, context.source_fp, context.options, reporter)
    builder.cache = StageCache(context.cache_root)
    return builder


def _step(builder, label: str, rows_in: int, work):
    """Run ``work()`` (one step of one shard) and report what it did, from the builder's counters."""
    import socket
    import time

    run = next((r for r in builder.runs if r.params.label == label), None)
    counters = lambda: (run.seen, run.errors, run.seconds) if run else (0, 0, 0.0)  # noqa: E731
    before, drops_before, notes_before = counters(), Counter(builder.drops), Counter(builder.notes)
    began = time.perf_counter()
    state = work()
    reasons = builder.drops - drops_before
    seen, errors, busy = (after - was for after, was in zip(counters(), before))
    report = {
        "label": label,
        "rows_in": rows_in,
        "rows_out": len(state.rows),
        "dropped": sum(reasons.values()),
        "reasons": dict(reasons),
        "notes": dict(builder.notes - notes_before),
        "cached": builder.cached[label] > 0,
        "fp": builder.used[-1],
        "seconds": round(time.perf_counter() - began, 4),
        "busy": busy,
        "seen": seen,
        "errors": errors,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    builder.cached.clear()
    builder.computed.clear()
    state.reports.append(report)
    return state


def _read_source(batch, context: _Context):
    import pyarrow as pa

    builder = _worker_builder(context)
    out = []
    for shard, payload in zip(batch.column("shard").to_pylist(), batch.column("payload").to_pylist()):
        items = pickle.loads(payload)
        try:
            state = _step(builder, SOURCE, len(items), lambda: builder.read_shard(shard, items))  # noqa: B023 (called now)
        except PrefgenError as exc:  # a clear error for the user: carried to the driver, not raised through Ray
            state = ShardState(shard, "", [], [], {}, error=str(exc))
        out.append(pickle.dumps(state))
    return pa.table({"shard": batch.column("shard"), "payload": pa.array(out, pa.binary())})


def _apply(builder, label: str, batch):
    import pyarrow as pa

    run = next(r for r in builder.runs if r.params.label == label)
    out = []
    for payload in batch.column("payload").to_pylist():
        state = pickle.loads(payload)
        if state.error is None:  # a shard that failed upstream goes on as it is, to the driver
            try:
                state = _step(builder, label, len(state.rows), lambda: builder.run_step(run, state))  # noqa: B023
            except PrefgenError as exc:
                state.error = str(exc)
        out.append(pickle.dumps(state))
    return pa.table({"shard": batch.column("shard"), "payload": pa.array(out, pa.binary())})


def _run_stage_task(batch, context: _Context, label: str):
    return _apply(_worker_builder(context, (label,)), label, batch)


class _StageActor:
    """One worker of a model stage: builds the stage once (its models load on the first shard that needs them)."""

    def __init__(self, context: _Context, label: str, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.builder, self.label = _worker_builder(context, (label,)), label

    def __call__(self, batch):
        return _apply(self.builder, self.label, batch)


# ---------------------------------------------------------------------------------------------------- driver


def _merge(builder, runs: dict, state) -> None:
    """Fold the steps' reports of a finished shard into the driver's bars, events, counters and error checks."""
    for report in state.reports:
        label = report["label"]
        builder.reporter.hand(label, report["rows_in"])
        builder.reporter.advance(
            label, report["rows_in"], report["rows_out"], report["dropped"], seconds=report["seconds"]
        )
        builder.used.append(report["fp"])
        builder.drops.update(report["reasons"])
        builder.notes.update(report["notes"])
        if report["cached"]:
            builder.cached[label] += 1
        else:
            builder.computed[label] += 1
            builder.reporter.event(
                "stage_done",
                stage=label,
                shard=state.index,
                rows_in=report["rows_in"],
                rows=report["rows_out"],
                drops=report["dropped"],
                seconds=report["seconds"],
                worker=report["worker"],
            )
        run = runs.get(label)
        if run is not None:
            run.seen += report["seen"]
            run.errors += report["errors"]
            run.seconds += report["busy"]
            builder._check_error_rate(run)
    state.reports = []


def _connect(address: str | None):
    """Ray, initialised: joining ``address`` ("auto": the cluster this machine runs), or a local cluster; and
    whether this call connected (then the build disconnects, which also stops a local cluster it started). A
    connection made before, by the caller, is used and left as it is."""
    try:
        import ray
    except ImportError:
        raise PrefgenError("--executor ray needs Ray: pip install 'prefgen[ray]'") from None
    import ray.data

    if address and address != "auto" and not _reachable(address):
        raise PrefgenError(
            f"cannot reach a Ray cluster at {address!r}: nothing answers there (start one with "
            "`ray start --head`, or leave out --address for a local cluster)"
        )
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    connected = not ray.is_initialized()
    if connected:
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                logging_level=logging.WARNING,
                runtime_env={"env_vars": env} if env else None,
            )
        except ConnectionError as exc:
            raise PrefgenError(f"cannot reach a Ray cluster at {address!r}: {exc}") from None
    data = ray.data.DataContext.get_current()
    data.enable_progress_bars = False  # prefgen's bars count rows per stage; Ray Data's would double them
    data.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray, connected


def _reachable(address: str, timeout: float = 5.0) -> bool:
    """Whether something listens at ``HOST:PORT`` (``ray://`` and ``http://`` prefixes allowed): Ray itself keeps
    retrying an address where nothing runs for a long while before it gives up."""
    import socket

    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return True  # not HOST:PORT; let Ray judge it
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False
