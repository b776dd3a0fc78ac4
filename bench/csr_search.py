"""CSR search batched over rows and paths vs one model call per node, one prompt at a time (target <= 0.3x).

Run: .venv/bin/python bench/csr_search.py [--model DIR] [--clip DIR] [--mode paper] [--runs 5] [--threads 1]
Both grow the same trees with the same rules (``prefgen.stages.csr.tree``) and the same per-path seeds, at equal
beam settings (8 prompts, beam 3, 3 candidates per step, 3 sentences). "batched": the ``csr_search`` stage: the
prompts (image + question) are encoded once per batch, each level is one ``sentence_steps`` call for every active
path of every prompt and one CLIP call for every new sentence, images embedded once (cached by image id).
"per node": as CSR's released code works: prompts one at a time, one ``sentence_steps`` call per node on the
un-encoded prompt (image, question and partial answer encoded again every time) and one CLIP call per sentence
with no image cache (the image is preprocessed and embedded again each time). Images are random noise at COCO's
640 x 480. The runs alternate between the two; the ratio of median wall times is measured in this one run, and
both must choose the same answers.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time

TARGET = 0.3
PROMPTS = 8
SETTINGS = dict(beam_width=3, candidates_per_step=3, max_sentences=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="A VLM folder to use instead of building a tiny LLaVA.")
    parser.add_argument("--clip", help="An open_clip local-dir folder to use instead of building a tiny one.")
    parser.add_argument("--mode", choices=["paper", "reference"], default="paper")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="Token budget of one sentence.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch's default). The tiny model's ops are too small to gain from "
        "threads, and on a shared machine threaded small ops stall waiting for each other, which "
        "hits the per-node side's many small calls hardest and made timings vary tenfold.",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from types import SimpleNamespace

    from prefgen.models import VLM, ClipScorer, build_tiny_clip, build_tiny_vlm
    from prefgen.stages.csr.stage import CsrSearch, CsrSearchParams

    with tempfile.TemporaryDirectory() as tmp:
        vlm = VLM.load(path=str(args.model or build_tiny_vlm("llava", f"{tmp}/llava")))
        clip = ClipScorer.load(model="tiny", path=str(args.clip or build_tiny_clip(f"{tmp}/clip")))
    params = CsrSearchParams(mode=args.mode, max_tokens_per_sentence=args.max_new_tokens, **SETTINGS)
    stage = CsrSearch(params, seed=0)
    stage.setup(SimpleNamespace(vlm=vlm, clip=clip))
    rows = _rows()
    uncached = ClipScorer(clip.model, clip.preprocess, clip.tokenizer, cache_size=0)
    calls = _count_calls(vlm, clip, uncached)

    def batched():
        clip.clear_cache()  # every run starts cold: the cache's gain must come from within the run
        return [
            None if not isinstance(out, dict) else (out["csr_chosen"], out["csr_rejected"])
            for out in stage.process(rows)
        ]

    per_node = lambda: _per_node(stage, vlm, uncached, rows)  # noqa: E731
    same = batched() == per_node()  # also the warm-up
    counts = {}
    for name, fn in (("batched", batched), ("per node", per_node)):
        calls.clear()
        fn()
        counts[name] = dict(calls)
    samples = _interleaved([batched, per_node], args.runs)
    t_batched, t_node = (statistics.median(times) for times in samples)
    ratio = t_batched / t_node
    print(
        f"model: {args.model or 'tiny llava'} + {args.clip or 'tiny open_clip'} on {vlm.device} "
        f"({torch.get_num_threads()} CPU threads); mode {args.mode}; "
        f"{PROMPTS} prompts, beam {SETTINGS['beam_width']}, {SETTINGS['candidates_per_step']} candidates, "
        f"{SETTINGS['max_sentences']} sentences, <= {args.max_new_tokens} tokens each"
    )
    for name, counted in counts.items():
        print(
            f"{name}: {counted.get('sentence_steps', 0)} sentence_steps calls, {counted.get('cosine', 0)} CLIP calls"
        )
    print(f"batched: {t_batched:.3f} s   per node: {t_node:.3f} s   (median of {args.runs}); same answers: {same}")
    print(f"batched/per-node = {ratio:.2f}x (target <= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'})")


def _per_node(stage, vlm, clip, rows) -> list:
    """The straightforward search: the same tree rules, the models called one node (or sentence) at a time."""
    from prefgen.models import Prompt
    from prefgen.models.images import decode_image
    from prefgen.stages.csr.stage import path_seed
    from prefgen.stages.csr.tree import Node, Sentence, grow, select

    p, config = stage.params, stage.config()
    decoding = (
        dict(strategy="diverse", diversity_penalty=p.diversity_penalty)
        if p.mode == "reference"
        else dict(strategy="sample", temperature=p.temperature)
    )
    answers = []
    for row in rows:
        image = decode_image(row["image"])
        prompt, seed = Prompt(row["question"], (image,)), stage.seed_for(row)

        def propose(pairs, prompt=prompt, seed=seed):
            found = [
                vlm.sentence_steps(
                    [prompt],
                    [node.partial()],
                    k=p.candidates_per_step,
                    max_new_tokens=p.max_tokens_per_sentence,
                    seed=[path_seed(seed, node.path_id())],
                    **decoding,
                )[0]
                for _, node in pairs
            ]
            return [[Sentence(c.text, c.finished, c.logprob_sum, c.logprob_mean) for c in cands] for cands in found]

        def measure(pairs, image=image):
            return [clip.cosine([image], [node.sentence.text.strip()])[0] for _, node in pairs]

        root = Node()
        grow([root], config, propose, measure)
        choice = select(root, config)
        ok = choice is not None and choice.chosen.answer() != choice.rejected.answer()
        answers.append((choice.chosen.answer(), choice.rejected.answer()) if ok else None)
    return answers


def _rows() -> list[dict]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    questions = [
        "Describe the following image.",
        "What is this photo about?",
        "Analyze the image in a comprehensive and detailed manner.",
    ]
    rows = []
    for i in range(PROMPTS):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(buffer, format="PNG")
        rows.append(
            {
                "row_id": f"r{i}",
                "image_id": f"img{i}",
                "image": {"bytes": buffer.getvalue(), "path": None},
                "question": questions[i % len(questions)],
            }
        )
    return rows


def _count_calls(vlm, *clips) -> dict:
    """Count ``sentence_steps`` and CLIP ``cosine`` calls by wrapping the instances' methods."""
    calls: dict[str, int] = {}
    for obj, name in ((vlm, "sentence_steps"), *((clip, "cosine") for clip in clips)):
        method = getattr(obj, name)

        def counted(*a, _method=method, _name=name, **k):
            calls[_name] = calls.get(_name, 0) + 1
            return _method(*a, **k)

        setattr(obj, name, counted)
    return calls


def _interleaved(fns, runs: int) -> list[list[float]]:
    """Wall times of each function, run in turn, so a burst of load from elsewhere hits both alike."""
    samples = [[] for _ in fns]
    for _ in range(runs):
        for fn, times in zip(fns, samples):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return samples


if __name__ == "__main__":
    main()
