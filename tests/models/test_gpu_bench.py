"""bench/gpu_throughput.py needs a GPU; without one it must say so and stop, having built nothing."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_bench_without_cuda_exits_with_a_clear_message():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_throughput.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert "no CUDA device found" in result.stderr and "nothing was run" in result.stderr
    assert result.stdout == ""
