"""The two VLM engines on the same model, prompts and settings: transformers (prefgen's own decoding) against vLLM.

Run: .venv/bin/python bench/engines.py [--scenes 64] [--build-scenes 1000] [--skip-build]
On the shipped shapes VLM (float32, CPU unless the engines say otherwise), one line per comparison, all measured
in this one run:
  sampling   8 descriptions per image at temperature 1.0 (40 new tokens), tokens/s      goal >= 4x
  csr        CSR's sampled sentence search per image (the csr_search stage), images/s    goal >= 3x
  logprobs   log-probs of 8 given descriptions per image, tokens/s
  build      one whole quickstart build of --build-scenes shapes scenes, vLLM's engine start included, seconds,
             each in a fresh process; and the share of the vLLM build's wall time spent inside the engine
             (starting it, and in its generate calls)                                     goals >= 2x, >= 80 %
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VLM_DIR = ROOT / "prefgen" / "shapes" / "checkpoints" / "shapes-vlm"
CLIP_DIR = ROOT / "prefgen" / "shapes" / "checkpoints" / "shapes-clip"
GOALS = {"sampling": 4.0, "csr": 3.0, "build": 2.0}


def line(name: str, hf: float, vllm: float, unit: str, higher_is_better: bool = True) -> str:
    ratio = vllm / hf if higher_is_better else hf / vllm
    goal = GOALS.get(name.split(" ")[0])
    verdict = f" (goal >= {goal:g}x: {'met' if ratio >= goal else 'MISSED'})" if goal else ""
    return f"{name}: hf {hf:,.1f} {unit}, vllm {vllm:,.1f} {unit}, ratio {ratio:.2f}×{verdict}"


def prompts_for(n: int):
    from prefgen.models import Prompt
    from prefgen.shapes.world import make_scenes, render

    return [Prompt("Describe the image.", (render(scene),)) for scene in make_scenes(n, seed=11, split="eval")]


def sampling(engine, prompts) -> float:
    start = time.perf_counter()
    found = engine.generate(prompts, n=8, temperature=1.0, max_new_tokens=40, seed=list(range(len(prompts))))
    return sum(len(c.token_ids) for row in found for c in row) / (time.perf_counter() - start)


def csr(engine, clip, prompts) -> float:
    from prefgen.stages.base import Item
    from prefgen.stages.csr.stage import CsrSearchParams

    params = CsrSearchParams(beam_width=3, candidates_per_step=3, max_sentences=4, max_tokens_per_sentence=16)
    stage = params.runtime(params, seed=0)
    stage.vlm, stage.clip = engine, clip
    items = [
        Item(row={"image_id": f"s{i}", "question": p.text}, seed=i, image=p.images[0], question=p.text)
        for i, p in enumerate(prompts)
    ]
    start = time.perf_counter()
    stage.run(items)
    return len(items) / (time.perf_counter() - start)


def logprobs(engine, prompts, texts) -> float:
    rows = [i for i in range(len(prompts)) for _ in range(8)]
    start = time.perf_counter()
    found = engine.logprobs(prompts, texts, rows=rows, append_eos=True)
    return sum(len(f.token_ids) for f in found) / (time.perf_counter() - start)


BUILD = """
import json, sys, time
from pathlib import Path
from prefgen.engine.runner import BuildOptions, run_build
start = time.perf_counter()
result = run_build(Path(sys.argv[1]), BuildOptions(out=Path(sys.argv[2]), quiet=True, overrides=tuple(sys.argv[3:])))
wall = time.perf_counter() - start
from prefgen.models.vllm import engine as vllm_engine
shared = vllm_engine._SHARED.get("engine")
inside = sum(shared.seconds.values()) if shared is not None else 0.0
print(json.dumps({"wall": wall, "inside": inside, "rows": result.manifest.rows}))
"""


def build(scenes: Path, count: int, out: Path, engine: str) -> dict:
    recipe = ROOT / "recipes" / "quickstart.yaml"
    overrides = [f"source.path={scenes}", f"limits.max_images={count}", f"models.vlm.engine={engine}"]
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(recipe), str(out), *overrides], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the {engine} build failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(engine_name: str, scenes: int) -> dict:
    """One engine's three figures, in this process (``--measure``): the other engine is never alive beside it, so
    neither one's threads or engine process can slow the other (on 2 cores, OpenMP threads that spin against another
    busy process cost prefgen's own loop up to 30x)."""
    from prefgen.models import VLM, ClipScorer, VllmVLM

    if engine_name == "vllm":
        engine = VllmVLM.load(path=VLM_DIR, dtype="float32", device="cpu")
    else:
        engine = VLM.load(path=VLM_DIR, dtype="float32", device="cpu", batch_size=32)
    clip = ClipScorer.load(model="shapes-clip", path=str(CLIP_DIR), device="cpu")
    prompts = prompts_for(scenes)
    engine.generate(prompts[:4], max_new_tokens=8)  # warm-up
    texts = [f"There is a {c} {s}. There is a red circle." for c in ("blue", "green") for s in ("square", "cross")]
    texts = [texts[(i + j) % len(texts)] for i in range(len(prompts)) for j in range(8)]
    found = {
        "sampling": sampling(engine, prompts),
        "csr": csr(engine, clip, prompts[:16]),
        "logprobs": logprobs(engine, prompts, texts),
        "start": getattr(engine, "seconds", {}).get("start", 0.0),
    }
    if engine_name == "vllm":
        engine.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=64)
    parser.add_argument("--build-scenes", type=int, default=1000)
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--measure", choices=["hf", "vllm"], help=argparse.SUPPRESS)  # one engine, in this process
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.measure:
        print(json.dumps(measure(args.measure, args.scenes)))
        return

    def run(engine: str, threads: str | None = None) -> dict:
        command = [sys.executable, __file__, "--measure", engine, "--scenes", str(args.scenes)]
        env = {**os.environ, "OMP_NUM_THREADS": threads} if threads else None
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise SystemExit(f"the {engine} measurement failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    hf, vllm, hf_one = run("hf"), run("vllm"), run("hf", threads="1")
    print(f"shapes VLM, {args.scenes} scenes, each engine in its own process; vLLM engine start {vllm['start']:.1f} s")
    for name, unit in (("sampling", "tok/s"), ("csr", "images/s"), ("logprobs", "tok/s")):
        print(line(name, hf[name], vllm[name], unit))
    # prefgen's own loop with one torch thread: on 2 cores, two OpenMP threads beside any other busy process spin
    # against it, and this small a model gains nothing from the second thread
    for name, unit in (("sampling", "tok/s"), ("csr", "images/s"), ("logprobs", "tok/s")):
        print(line(f"{name} (hf on one thread)", hf_one[name], vllm[name], unit))
    if args.skip_build:
        return
    from prefgen.shapes.world import write_scene_folder

    with tempfile.TemporaryDirectory() as tmp:
        scenes = write_scene_folder(Path(tmp) / "scenes", args.build_scenes, seed=5)
        on_hf = build(scenes, args.build_scenes, Path(tmp) / "hf", "hf")
        on_vllm = build(scenes, args.build_scenes, Path(tmp) / "vllm", "vllm")
    print(line("build", on_hf["wall"], on_vllm["wall"], "s", higher_is_better=False), end="")
    print(f" ({args.build_scenes} scenes; pairs: hf {on_hf['rows']}, vllm {on_vllm['rows']})")
    share = on_vllm["inside"] / on_vllm["wall"]
    print(f"engine share of the vLLM build: {share:.0%} (goal >= 80 %: {'met' if share >= 0.8 else 'MISSED'})")


if __name__ == "__main__":
    main()
