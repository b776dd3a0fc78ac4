"""Sentence steps with prefix reuse vs re-encoding the prefix for every candidate and step (target <= 0.6x).

Run: .venv/bin/python bench/prefix_reuse.py [--family llava|all|gemma3,qwen3_vl] [--model DIR] [--runs 3]
A CSR-like loop on one image: 4 sentence steps, 5 candidate sentences per step, the partial answer growing by one
sentence per step. "reuse": the image + prompt are encoded once (``vlm.encode``), each step feeds the partial answer
once on top of that cache and the 5 candidates share it. "re-encode": every candidate of every step runs its own
call that encodes image + prompt + partial answer from scratch. Both decode the same number of candidates with the
same token budget; the ratio of median wall times is measured in this one run.

With several families (``--family all`` or a comma list) it prints one line per family with the ratio and the path
the runtime chose for it: families whose cache cannot be extended across padding (Gemma 3's sliding window once rows
outgrow it, Qwen3.5's linear attention) re-encode the prefix per step, so their ratio shows what is left of the gain
(the k candidates still share one encoded prefix); the target applies to families that reuse.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

TARGET = 0.6
STEPS, CANDIDATES = 4, 5
ANSWER = [
    "The image shows a red square on a white background.",
    " There is a blue circle next to it.",
    " A small green triangle is in the corner.",
    " The sky is clear.",
]

sys.path.insert(0, str(Path(__file__).parent))
from _timing import timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="llava", help="A tiny family, a comma-separated list, or `all`.")
    parser.add_argument("--model", help="A model folder to use instead of building a tiny one.")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from prefgen.models.tiny.families import FAMILIES

    families = list(FAMILIES) if args.family == "all" else args.family.split(",")
    if args.model:
        families = families[:1]
    rows = []
    for family in families:
        rows.append(measure(family, args))
    if len(rows) > 1:
        print()
        print(f"{'family':<16} {'path':<10} {'reuse s':>8} {'re-enc s':>9} {'ratio':>6}  target <= {TARGET}x")
        for family, path, t_reuse, t_reencode, ratio in rows:
            verdict = ("met" if ratio <= TARGET else "MISSED") if path == "reuse" else "n/a (re-encodes)"
            print(f"{family:<16} {path:<10} {t_reuse:>8.3f} {t_reencode:>9.3f} {ratio:>5.2f}x  {verdict}")


def measure(family: str, args) -> tuple[str, str, float, float, float]:
    from PIL import Image

    from prefgen.models import VLM, Prompt, build_tiny_vlm

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or build_tiny_vlm(family, f"{tmp}/{family}")
        vlm = VLM.load(path=str(folder))
    prompt = Prompt("Describe the image in detail.", Image.new("RGB", (320, 240), (200, 40, 40)))
    partials = ["".join(ANSWER[:step]) for step in range(STEPS)]
    budget = dict(max_new_tokens=args.max_new_tokens)
    encoded_once = vlm.encode([prompt])
    span = encoded_once.length + len(vlm.tokenizer(partials[-1])["input_ids"]) + args.max_new_tokens
    limit = vlm.reuse_limit
    path = "reuse" if limit is None or span < limit else "re-encode"

    def reuse():
        encoded = vlm.encode([prompt])
        return [
            vlm.sentence_steps(encoded, [partial], k=CANDIDATES, seed=step, **budget)[0]
            for step, partial in enumerate(partials)
        ]

    def reencode():
        return [
            [
                vlm.sentence_steps([prompt], [partial], k=1, seed=step * CANDIDATES + j, **budget)[0][0]
                for j in range(CANDIDATES)
            ]
            for step, partial in enumerate(partials)
        ]

    reuse(), reencode()  # warm-up
    tokens = lambda steps: sum(len(c.token_ids) for cands in steps for c in cands)  # noqa: E731
    n_reuse, n_reencode = tokens(reuse()), tokens(reencode())
    t_reuse, t_reencode = timed(reuse, args.runs), timed(reencode, args.runs)
    ratio = t_reuse / t_reencode
    per_token = (t_reuse / max(n_reuse, 1)) / (t_reencode / max(n_reencode, 1))
    print(
        f"model: {args.model or 'tiny ' + family} on {vlm.device}; {STEPS} steps x {CANDIDATES} candidates, "
        f"<= {args.max_new_tokens} tokens each; cache {vlm.cache_kind}, prefix path: {path}"
    )
    print(f"reuse: {t_reuse:.3f} s   re-encode: {t_reencode:.3f} s   (median of {args.runs})")
    print(
        f"candidate tokens per run: reuse {n_reuse}, re-encode {n_reencode} (sampled sentences end at different "
        f"places); per candidate token: {per_token:.2f}x"
    )
    print(f"reuse/re-encode = {ratio:.2f}x (target <= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'})")
    return family, path, t_reuse, t_reencode, ratio


if __name__ == "__main__":
    main()
