"""The shapes world's benches: a VLM or a CLIP on ``n`` held-out eval scenes (the prior-breaking distribution).

- ``shapes-chair`` / ``shapes-pope``: hallucination with exact ground truth (``prefgen.shapes.metrics``).
- ``shapes-skills``: QA by kind, self-questioning, self-enhancement, answers on noised images (``shapes.skills``).
- ``shapes-clip``: a CLIP's present-vs-absent phrase AUC.
- ``round_evaluator``: what `prefgen train --rounds --eval shapes[-chair|-pope|-qa]` runs after each round.
"""

from __future__ import annotations

from pathlib import Path

from prefgen.shapes import metrics
from prefgen.shapes.world import make_scenes

SHORT_ANSWER = "\nLook at the image and answer the question using a single word or phrase."  # as sena.yaml
# what each shapes name of `train --rounds --eval` measures
ROUND_PARTS = {
    "shapes-chair": ("chair",),
    "shapes-pope": ("pope",),
    "shapes-qa": ("qa",),
    "shapes": ("chair", "pope", "qa"),
}


def load_vlm(path: str | Path, device: str = "auto", batch_size: int = 32, engine: str = "hf"):
    if engine == "vllm":
        from prefgen.models import VllmVLM

        return VllmVLM.load(path=str(path), device=device, dtype="float32")
    from prefgen.models import VLM

    return VLM.load(path=str(path), device=device, dtype="float32", batch_size=batch_size)


def shapes_chair(
    model: str | Path,
    n: int = 500,
    seed: int = 0,
    prompt: str = metrics.DESCRIBE_PROMPT,
    max_new_tokens: int = 48,
    device: str = "auto",
    engine: str = "hf",
) -> dict:
    scenes = make_scenes(n, seed, "eval")
    describe = metrics.vlm_describer(load_vlm(model, device, engine=engine), prompt, max_new_tokens)
    report, texts = metrics.run_chair(describe, scenes)
    return {
        "bench": "shapes-chair",
        "model": str(model),
        "seed": seed,
        "prompt": prompt,
        **report,
        "samples": [
            {"scene": s.index, "truth": sorted(map(list, s.kinds)), "text": t} for s, t in zip(scenes[:20], texts)
        ],
    }


def shapes_pope(
    model: str | Path,
    n: int = 500,
    seed: int = 0,
    suffix: str = "",
    max_new_tokens: int = 8,
    device: str = "auto",
    engine: str = "hf",
) -> dict:
    answer = metrics.vlm_answerer(load_vlm(model, device, engine=engine), suffix, max_new_tokens)
    splits = metrics.run_pope(answer, make_scenes(n, seed, "eval"), seed=seed)
    return {"bench": "shapes-pope", "model": str(model), "seed": seed, "scenes": n, **splits}


def shapes_skills(
    model: str | Path, n: int = 500, seed: int = 0, suffix: str = "", device: str = "auto", engine: str = "hf"
) -> dict:
    """QA by kind, self-questioning, self-enhancement and answers on diffusion-noised images (``skills.py``)."""
    from prefgen.shapes.skills import measure_skills

    vlm = load_vlm(model, device, engine=engine)
    report = measure_skills(vlm, make_scenes(n, seed, "eval"), suffix=suffix, seed=seed)
    return {"bench": "shapes-skills", "model": str(model), "seed": seed, **report}


def shapes_clip(clip: str | Path, n: int = 500, seed: int = 0, device: str = "auto") -> dict:
    from prefgen.models import ClipScorer

    scorer = ClipScorer.load(model="shapes-clip", path=str(clip), device=device)
    return {
        "bench": "shapes-clip",
        "clip": str(clip),
        "seed": seed,
        **metrics.clip_auc(scorer, make_scenes(n, seed, "eval")),
    }


def measure_round(vlm, parts: tuple[str, ...], n: int, seed: int = 0) -> dict:
    """The numbers of ``parts`` (chair, pope, qa) of one loaded VLM on ``n`` eval scenes; no sample texts (the
    lineage keeps numbers only)."""
    scenes = make_scenes(n, seed, "eval")
    report = {}
    if "chair" in parts:
        chair, _ = metrics.run_chair(metrics.vlm_describer(vlm), scenes)
        report["chair"] = numbers(chair)
    if "pope" in parts:
        pope = metrics.run_pope(metrics.vlm_answerer(vlm, SHORT_ANSWER), scenes, seed=seed)
        report["pope"] = {split: numbers(values) for split, values in pope.items()}
    if "qa" in parts:
        from prefgen.shapes.skills import measure_qa

        report["qa"] = measure_qa(vlm, scenes, SHORT_ANSWER)
    return report


def numbers(values: dict) -> dict:
    return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
