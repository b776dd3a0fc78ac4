"""Runner memory: peak RSS of a build over 5,000 images vs 500 images (target: within 1.3x).

Run: .venv/bin/python bench/runner_memory.py [--small 500] [--large 5000]
Each build runs in its own Python process (so peaks do not mix) over 64 x 64 PNGs with a cheap stand-in model stage
and ``select_pairs``, shard 64. The runner holds one shard at a time: memory should not grow with the corpus. The
peak is the child's ``ru_maxrss`` (which includes the imports of datasets, pyarrow and PIL).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET = 1.3
CHILD = """
import json, resource, sys, time
sys.path.insert(0, {bench!r})
import _runner_stages
from pathlib import Path
from prefgen.engine.runner import BuildOptions, run_build
_runner_stages.register()
recipe = _runner_stages.make_corpus(Path({folder!r}), {n}, 0.2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result = run_build(recipe, BuildOptions(quiet=True))
print(json.dumps({{"rows": result.manifest.rows, "seconds": time.perf_counter() - start, "before_kib": before,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def measure(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        code = CHILD.format(bench=str(Path(__file__).parent), folder=tmp, n=n)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=5000)
    args = parser.parse_args()
    results = {n: measure(n) for n in (args.small, args.large)}
    print(f"{'images':>7} {'pairs':>6} {'build s':>8} {'RSS before build MiB':>21} {'peak RSS MiB':>13}")
    for n, r in results.items():
        print(
            f"{n:>7} {r['rows']:>6} {r['seconds']:>8.1f} {r['before_kib'] / 1024:>21.1f} {r['peak_kib'] / 1024:>13.1f}"
        )
    ratio = results[args.large]["peak_kib"] / results[args.small]["peak_kib"]
    print(
        f"peak RSS {args.large} / {args.small} images = {ratio:.2f}x (target <= {TARGET}x: "
        f"{'met' if ratio <= TARGET else 'missed'})"
    )


if __name__ == "__main__":
    main()
