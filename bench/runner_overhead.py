"""Runner overhead: a build's wall time vs the time spent inside stage methods (target: overhead <= 10 %).

Run: .venv/bin/python bench/runner_overhead.py [--images 1000] [--ms 2 5 20]
A real build (source listing and hashing, image decoding, per-stage cache, shard and reject files, publishing) over
``--images`` 64 x 64 PNGs, with a stand-in model stage that spends a fixed CPU time per row (``--ms``) followed by
``select_pairs``. The stages' own time comes from the manifest's per-stage timings; overhead = (wall - stage time) /
stage time, after a warm-up build has paid the imports. Each setting runs into a fresh store (no cache hits);
progress bars are off.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
TARGET = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument(
        "--ms", type=float, nargs="+", default=[2.0, 5.0, 10.0, 20.0], help="CPU ms per row in the stage."
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import _runner_stages

    from prefgen.engine.runner import BuildOptions, run_build

    _runner_stages.register()
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports (datasets, pyarrow, PIL plugins) are paid once
        run_build(_runner_stages.make_corpus(Path(tmp), 64, 0), BuildOptions(quiet=True))
    print(f"{args.images} images of 64 x 64, shard 64, batch 16; stand-in model stage + select_pairs")
    print(f"{'ms/row':>7} {'wall s':>8} {'in stages s':>12} {'overhead':>9}  ({'per row':>7})")
    worst = 0.0
    for ms in args.ms:
        with tempfile.TemporaryDirectory() as tmp:
            recipe = _runner_stages.make_corpus(Path(tmp), args.images, ms)
            start = time.perf_counter()
            result = run_build(recipe, BuildOptions(quiet=True))
            wall = time.perf_counter() - start
            inside = sum(s["seconds"] for s in result.manifest.stats["stages"].values())
            overhead = (wall - inside) / inside
            worst = max(worst, overhead) if ms >= 10 else worst
            per_row_ms = (wall - inside) / args.images * 1e3
            print(f"{ms:>7g} {wall:>8.2f} {inside:>12.2f} {overhead:>8.1%}  ({per_row_ms:>5.2f} ms)")
    verdict = "met" if worst <= TARGET else "missed"
    print(f"overhead at >= 10 ms/row: worst {worst:.1%} (target <= {TARGET:.0%}: {verdict})")


if __name__ == "__main__":
    main()
