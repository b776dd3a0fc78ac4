"""Ray executor: throughput with 1 and 2 workers, and Ray's fixed costs against the in-process runner.

The stand-in stage is CPU-bound model work: the shapes VLM writing a concise and a detailed caption of each scene
(`caption`, greedy, up to 48 new tokens each; then `select_pairs`), one torch thread per worker, on procedural
scenes. Every build writes to its own store, so nothing is served from a cache. Printed: seconds and rows per second
for in-process (one thread), Ray with 1 worker and Ray with 2 workers; the 2-worker / 1-worker throughput ratio
(target >= 1.7 on 2 cores); Ray's start-up (a local cluster) and its overhead over in-process per build and per row.

Throughput is measured two ways, from the builds' own ``shard_done`` events (``--log-json``): over the whole build,
and in steady state, from the moment every worker has finished its first shard (its process started, the model
loaded) to the last shard, counting the images of the shards finished in between. The fixed costs the steady state
leaves out are reported on their own: Ray's start-up, and each build's time to its first finished shards.

Beside them, the machine's own ceiling for two workers: the same build split in two halves, run as two plain
in-process builds at once (no Ray), against one build of the whole, so the Ray ratio can be read against what two
processes get on these cores at all.

    python bench/ray_scaling.py [--images 2048] [--shard-size 64]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = """\
name: ray-scaling
seed: 0
source: {{type: manifest, path: {images}/manifest.jsonl, image_column: image, question_column: question}}
models:
  vlm: {{path: {vlm}, dtype: float32, device: cpu}}
stages:
  - type: caption
    detailed: true
    max_new_tokens: 48
  - type: select_pairs
    chosen: detailed_caption
    rejected: caption
    method: bench
    drop_duplicate_sentences: false
    drop_rejected_in_chosen: false
output:
  store: {out}/unused
"""


def _half_build(recipe: str, out: str, shard_size: int, ready, go, seconds) -> None:
    """One of two in-process builds started together (the ceiling measurement); its build time into ``seconds``."""
    import torch

    from prefgen.engine.runner import BuildOptions, run_build

    torch.set_num_threads(1)
    ready.wait()
    go.wait()
    start = time.perf_counter()
    run_build(Path(recipe), BuildOptions(out=Path(out), shard_size=shard_size, quiet=True))
    seconds.value = time.perf_counter() - start


def two_processes(tmp: Path, images: Path, lines: list[str], shard_size: int) -> float:
    """Seconds for two in-process builds of half the images each, run at the same time in two processes."""
    spawn = multiprocessing.get_context("spawn")
    ready, go = spawn.Barrier(3), spawn.Barrier(3)
    workers, times = [], []
    for part in range(2):
        manifest = images / f"half-{part}.jsonl"
        manifest.write_text("".join(lines[part::2]))
        recipe = tmp / f"half-{part}.yaml"
        recipe.write_text(
            RECIPE.format(images=images, vlm=ROOT / "prefgen/shapes/checkpoints/shapes-vlm", out=tmp).replace(
                "manifest.jsonl", manifest.name
            )
        )
        times.append(spawn.Value("d", 0.0))
        workers.append(
            spawn.Process(
                target=_half_build, args=(str(recipe), str(tmp / f"half-{part}"), shard_size, ready, go, times[-1])
            )
        )
        workers[-1].start()
    ready.wait()  # both have imported everything: time the builds only
    go.wait()
    for worker in workers:
        worker.join()
        if worker.exitcode:
            raise SystemExit(f"a half build failed (exit code {worker.exitcode})")
    return max(t.value for t in times)


def steady_state(log: Path, workers: int, began: float) -> dict:
    """Images per second between the moment ``workers`` shards have finished (each worker's first, with its start-up
    and model load) and the last shard, from the build's ``shard_done`` events; and the time to that moment."""
    done = sorted(
        (e["time"], e["rows"] + e["rejects"])
        for e in map(json.loads, log.read_text().splitlines())
        if e["event"] == "shard_done"
    )  # images: pairs published plus rows dropped
    if len(done) <= workers:
        raise SystemExit(f"{log.name}: {len(done)} shards for {workers} workers; use more --images")
    first, last = done[workers - 1][0], done[-1][0]
    images = sum(n for _, n in done[workers:])
    return {
        "images": images,
        "seconds": round(last - first, 2),
        "rows_per_s": round(images / (last - first), 2),
        "first_shards_after_s": round(first - began, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--shard-size", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    import torch

    from prefgen.engine.runner import BuildOptions, run_build
    from prefgen.shapes.world import make_scenes, render

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="prefgen-ray-bench-") as tmp:
        tmp = Path(tmp)
        images = tmp / "images"
        images.mkdir()
        lines = []
        for i, scene in enumerate(make_scenes(args.images, seed=0, split="eval")):
            render(scene).save(images / f"scene-{i:05d}.png")
            lines.append(json.dumps({"image": f"scene-{i:05d}.png", "question": "Describe the image."}) + "\n")
        (images / "manifest.jsonl").write_text("".join(lines))
        recipe = tmp / "recipe.yaml"
        recipe.write_text(RECIPE.format(images=images, vlm=ROOT / "prefgen/shapes/checkpoints/shapes-vlm", out=tmp))

        def timed(name: str, workers: int = 1, **options) -> float:
            log = tmp / f"{name}.jsonl"
            start = time.perf_counter()
            began = time.time()
            result = run_build(
                recipe,
                BuildOptions(
                    out=tmp / name, shard_size=args.shard_size, quiet=True, log_json=log, workers=workers, **options
                ),
            )
            seconds = time.perf_counter() - start
            rows.append(result.manifest.rows)
            steady[name] = steady_state(log, workers, began)
            return seconds

        rows: list[int] = []
        steady: dict[str, dict] = {}

        local = timed("local")
        halves = two_processes(tmp, images, lines, args.shard_size)
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
        startup = time.perf_counter() - start
        one = timed("ray-1", executor="ray", workers=1)
        two = timed("ray-2", executor="ray", workers=2)
        ray.shutdown()
    assert len(set(rows)) == 1, f"the executors published different pair counts: {rows}"
    rows = args.images
    report = {
        "images": rows,
        "shard_size": args.shard_size,
        "cpus": os.cpu_count(),
        "in_process": {"seconds": round(local, 2), "rows_per_s": round(rows / local, 2)},
        "ray_1_worker": {"seconds": round(one, 2), "rows_per_s": round(rows / one, 2)},
        "ray_2_workers": {"seconds": round(two, 2), "rows_per_s": round(rows / two, 2)},
        "ratio_2_over_1_workers": round(one / two, 2),
        "steady_state": steady,
        "steady_ratio_2_over_1_workers": round(steady["ray-2"]["rows_per_s"] / steady["ray-1"]["rows_per_s"], 2),
        "two_processes_without_ray": {"seconds": round(halves, 2), "rows_per_s": round(rows / halves, 2)},
        "ceiling_2_over_1_processes": round(local / halves, 2),
        "ray_startup_s": round(startup, 2),
        "ray_overhead_s": round(one - local, 2),
        "ray_overhead_per_row_ms": round(1000 * (one - local) / rows, 1),
    }
    print(json.dumps(report, indent=2))
    print(
        f"2 workers / 1 worker throughput: {report['steady_ratio_2_over_1_workers']:.2f}x in steady state, "
        f"{report['ratio_2_over_1_workers']:.2f}x over the whole build (target >= 1.7; two plain "
        f"processes get {report['ceiling_2_over_1_processes']:.2f}x here); Ray start-up "
        f"{startup:.1f} s, overhead over in-process {one - local:+.1f} s per build "
        f"({report['ray_overhead_per_row_ms']:+.0f} ms per row)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
