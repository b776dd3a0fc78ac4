"""Batched chat generation vs one call per prompt: 32 prompts, greedy, on a tiny model (target <= 0.35x).

Run: .venv/bin/python bench/batched_generation.py [--family llava] [--model DIR] [--runs 3]
Builds the tiny model offline unless --model points at one; prints the median wall time of each way over --runs
repetitions, after a warm-up, and their ratio, all measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

TARGET = 0.35

sys.path.insert(0, str(Path(__file__).parent))
from _timing import timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="llava")
    parser.add_argument("--model", help="A model folder to use instead of building a tiny one.")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from PIL import Image

    from prefgen.models import VLM, Prompt, build_tiny_vlm

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or build_tiny_vlm(args.family, f"{tmp}/{args.family}")
        vlm = VLM.load(path=str(folder), batch_size=args.prompts)
    prompts = [
        Prompt(f"Describe picture number {i} in detail.", Image.new("RGB", (64, 48), (7 * i, 90, 200)))
        for i in range(args.prompts)
    ]
    batched = lambda: vlm.generate(prompts, max_new_tokens=args.max_new_tokens)  # noqa: E731
    single = lambda: [vlm.generate([p], max_new_tokens=args.max_new_tokens) for p in prompts]  # noqa: E731
    batched(), single()  # warm-up
    same = [c[0].token_ids for c in batched()] == [c[0][0].token_ids for c in single()]
    t_batched, t_single = timed(batched, args.runs), timed(single, args.runs)
    ratio = t_batched / t_single
    print(
        f"model: {args.model or 'tiny ' + args.family} on {vlm.device}; {args.prompts} prompts, greedy, "
        f"{args.max_new_tokens} new tokens"
    )
    print(f"batched: {t_batched:.3f} s   single calls: {t_single:.3f} s   (median of {args.runs})")
    print(f"identical answers: {same}")
    print(f"batched/single = {ratio:.2f}x (target <= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'})")


if __name__ == "__main__":
    main()
