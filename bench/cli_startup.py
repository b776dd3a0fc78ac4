"""Wall time of the light CLI commands, which must not import torch/transformers (target: <= 0.5 s each).

Run: .venv/bin/python bench/cli_startup.py [--runs N]
Prints the median of N runs of each command, the bare interpreter start-up for reference, and each command's
ratio to the 0.5 s target, all measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.5


def timed(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def small_store(root: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from conftest import pair_rows  # literal rows with small images

    from prefgen.store.folder import Store

    store = Store.create(root / "store")
    with store.draft("v1") as draft:
        draft.write_shard(0, pair_rows("r", 200))
        draft.publish(message="bench")
    return store.root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    prefgen = [sys.executable, "-m", "prefgen.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        store = small_store(Path(tmp))
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "prefgen --help": [*prefgen, "--help"],
            "prefgen versions --help": [*prefgen, "versions", "--help"],
            "prefgen versions STORE": [*prefgen, "versions", str(store)],
            "prefgen query STORE SQL": [
                *prefgen,
                "query",
                str(store),
                "SELECT method, count(*), avg(margin) FROM pairs GROUP BY method",
            ],
        }
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        print(f"{'command':<26} {'median s':>9} {'vs target':>10}   ({args.runs} runs each, target {TARGET_S} s)")
        worst = 0.0
        for name, cmd in commands.items():
            seconds = timed(cmd, args.runs)
            ratio = seconds / TARGET_S
            if name.startswith("prefgen"):
                worst = max(worst, ratio)
            print(f"{name:<26} {seconds:>9.3f} {ratio:>9.2f}x")
        print(f"worst prefgen command: {worst:.2f}x the target ({'met' if worst <= 1 else 'MISSED'})")


if __name__ == "__main__":
    main()
