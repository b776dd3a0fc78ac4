"""Named benchmarks behind ``prefgen eval``: one function per bench, each returning a JSON-ready report.

- ``shapes-chair`` / ``shapes-pope``: a VLM on ``n`` held-out eval scenes (the prior-breaking distribution).
- ``shapes-clip``: a CLIP's present-vs-absent phrase AUC on ``n`` eval scenes.
- ``pope`` / ``chair``: a VLM on real data (POPE jsonl + images; COCO instances JSON + images).
- ``reward``: the pairs of a store built on shapes scenes, judged against the scenes' ground truth: how often the
  chosen answer is really better, and whether the pairs favour longer answers.
"""

from __future__ import annotations

from pathlib import Path

from prefgen.core.config import resolve_path
from prefgen.core.errors import PrefgenError
from prefgen.eval.realdata import evaluate_coco_chair, evaluate_pope_file
from prefgen.shapes import judge, metrics
from prefgen.shapes.world import GROUND_TRUTH, make_scenes, read_ground_truth
from prefgen.store.query import parse_ref

BENCHES = ("shapes-chair", "shapes-pope", "shapes-skills", "shapes-clip", "pope", "chair", "reward")
SHORT_ANSWER = "\nLook at the image and answer the question using a single word or phrase."  # as sena.yaml


def load_vlm(path: str | Path, device: str = "auto", batch_size: int = 32):
    from prefgen.models import VLM

    return VLM.load(path=str(path), device=device, dtype="float32", batch_size=batch_size)


def shapes_chair(
    model: str | Path,
    n: int = 500,
    seed: int = 0,
    prompt: str = metrics.DESCRIBE_PROMPT,
    max_new_tokens: int = 48,
    device: str = "auto",
) -> dict:
    scenes = make_scenes(n, seed, "eval")
    describe = metrics.vlm_describer(load_vlm(model, device), prompt, max_new_tokens)
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
    model: str | Path, n: int = 500, seed: int = 0, suffix: str = "", max_new_tokens: int = 8, device: str = "auto"
) -> dict:
    answer = metrics.vlm_answerer(load_vlm(model, device), suffix, max_new_tokens)
    splits = metrics.run_pope(answer, make_scenes(n, seed, "eval"), seed=seed)
    return {"bench": "shapes-pope", "model": str(model), "seed": seed, "scenes": n, **splits}


def shapes_skills(model: str | Path, n: int = 500, seed: int = 0, suffix: str = "", device: str = "auto") -> dict:
    """QA by kind, self-questioning, self-enhancement and answers on diffusion-noised images (``skills.py``)."""
    from prefgen.shapes.skills import measure_skills

    report = measure_skills(load_vlm(model, device), make_scenes(n, seed, "eval"), suffix=suffix, seed=seed)
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


def real_pope(
    model: str | Path,
    questions: str | Path,
    images: str | Path,
    limit: int | None = None,
    suffix: str = "",
    device: str = "auto",
) -> dict:
    answer = metrics.vlm_answerer(load_vlm(model, device), suffix, max_new_tokens=8)
    scores, answers = evaluate_pope_file(answer, questions, images, limit)
    return {"bench": "pope", "model": str(model), "questions_file": str(questions), **scores, "answers": answers[:20]}


def real_chair(
    model: str | Path,
    annotations: str | Path,
    images: str | Path,
    limit: int | None = None,
    prompt: str = metrics.DESCRIBE_PROMPT,
    max_new_tokens: int = 128,
    device: str = "auto",
) -> dict:
    describe = metrics.vlm_describer(load_vlm(model, device), prompt, max_new_tokens)
    scores, captions = evaluate_coco_chair(describe, annotations, images, limit)
    return {
        "bench": "chair",
        "model": str(model),
        "annotations": str(annotations),
        "prompt": prompt,
        **scores,
        "samples": dict(list(captions.items())[:20]),
    }


def store_reward(store: str, ground_truth: str | Path) -> dict:
    """Reward accuracy and length bias of a store version (``STORE`` or ``STORE@VERSION``), overall and per
    method; pairs whose image has no ground truth are counted and left out."""
    import pyarrow.parquet as pq

    handle, version = parse_ref(store)
    truth = read_ground_truth(ground_truth)
    files = handle.data_files(version)
    columns = ["image_id", "image_path", "chosen", "rejected", "method", "question"]
    found = set(pq.read_schema(files[0]).names)
    table = pq.read_table([str(f) for f in files], columns=[c for c in columns if c in found]).to_pylist()
    triples: dict[str, list] = {}
    unmatched = 0
    for row in table:
        scene = truth.get(row.get("image_id") or "") or truth.get(Path(row.get("image_path") or "").name)
        if scene is None:
            unmatched += 1
            continue
        triple = (scene, _last_text(row["chosen"]), _last_text(row["rejected"]), row.get("question"))
        triples.setdefault("all", []).append(triple)
        triples.setdefault(f"method:{row.get('method') or '?'}", []).append(triple)
    if not triples:
        raise PrefgenError(f"no pair of {store} has an image in the ground truth {ground_truth}")
    return {
        "bench": "reward",
        "store": store,
        "version": version or handle.latest(),
        "unmatched_pairs": unmatched,
        **{name: judge.reward_accuracy(group) for name, group in triples.items()},
    }


def ground_truth_beside(recipe: Path, source) -> Path | None:
    """The shapes world's ground truth in the folder of a recipe's image folder or manifest, if there is one."""
    path = getattr(source, "path", None)
    if not path:
        return None
    found = resolve_path(path, Path(recipe).parent)
    found = (found if found.is_dir() else found.parent) / GROUND_TRUTH
    return found if found.is_file() else None


def pair_judge(ground_truth: str | Path):
    """``judge(STORE@VERSION) -> {pairs, accuracy, better, tie, worse, chosen_longer, by_kind}`` for the rounds
    loop: how often a version's chosen answer is truly better, by the ground truth of the images it was built from,
    overall and per kind of prompt (``by_kind``: pairs, better / tie / worse, chosen / rejected correct)."""
    keys = ("pairs", "accuracy", "better", "tie", "worse", "chosen_longer", "by_kind")

    def run(ref: str) -> dict:
        found = store_reward(ref, ground_truth)["all"]
        return {key: found[key] for key in keys}

    return run


def _numbers(values: dict) -> dict:
    return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _last_text(messages) -> str:
    if isinstance(messages, str):
        return messages
    return messages[-1]["content"] if messages else ""


def model_evaluator(bench: str, n: int = 500, seed: int = 0, device: str = "auto"):
    """``evaluate(model_dir) -> metrics`` for `prefgen train --rounds --eval`: ``shapes-chair``, ``shapes-pope``,
    ``shapes-qa`` (accuracy per kind of question, asked with the short-answer suffix) or ``shapes`` (all three).
    Only the numbers are kept (the lineage holds no sample texts)."""
    wanted = {
        "shapes-chair": ("chair",),
        "shapes-pope": ("pope",),
        "shapes-qa": ("qa",),
        "shapes": ("chair", "pope", "qa"),
    }
    if bench not in wanted:
        raise PrefgenError(f"unknown evaluation {bench!r}; use one of {', '.join(wanted)}")

    def run(model_dir) -> dict:
        vlm, scenes = load_vlm(model_dir, device), make_scenes(n, seed, "eval")  # one load for every measurement
        report = {}
        if "chair" in wanted[bench]:
            chair, _ = metrics.run_chair(metrics.vlm_describer(vlm), scenes)
            report["chair"] = _numbers(chair)
        if "pope" in wanted[bench]:
            pope = metrics.run_pope(metrics.vlm_answerer(vlm, SHORT_ANSWER), scenes, seed=seed)
            report["pope"] = {split: _numbers(values) for split, values in pope.items()}
        if "qa" in wanted[bench]:
            from prefgen.shapes.skills import measure_qa

            report["qa"] = measure_qa(vlm, scenes, SHORT_ANSWER)
        return report

    return run
