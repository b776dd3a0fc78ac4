"""The one table of benches: what ``prefgen eval --bench`` measures, what each bench needs, and how it runs.

``BENCHES`` maps a name to a ``Bench`` (help text, the options it needs, a runner); the CLI builds its
``--bench`` choice, its checks and its help from it, and the README's list is tested against it. This module
imports nothing heavy: the runners load models and data only when called. The round evaluators of
`prefgen train --rounds --eval` are in ``rounds.py``.

- ``shapes-*``: the shapes world's held-out scenes (``shapes.py``).
- ``chair`` / ``pope``: real data, as the reference code scores it (``chair.py``, ``pope.py``), on answers a user
  already has (``--answers``) or on a VLM's answers (``--model`` with ``--images``).
- ``reward``: the pairs of a store built on shapes scenes, judged against the scenes' ground truth: how often the
  chosen answer is really better, and whether the pairs favour longer answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prefgen.core.errors import PrefgenError

DESCRIBE = "Describe this image."  # the CHAIR prompt of CSR and POVID (POVID #5)


@dataclass(frozen=True)
class Options:
    """Everything a bench may be given (the options of ``prefgen eval``); each bench reads what it needs."""

    model: Path | None = None
    clip: Path | None = None
    n: int = 500
    seed: int = 0
    questions: tuple[Path, ...] = ()
    answers: tuple[Path, ...] = ()
    images: Path | None = None
    instances: tuple[Path, ...] = ()
    captions: tuple[Path, ...] = ()
    synonyms: Path | None = None
    image_ids: Path | None = None
    limit: int | None = None
    store: str | None = None
    ground_truth: Path | None = None
    short_answer: bool = False
    prompt: str | None = None
    max_new_tokens: int | None = None
    device: str = "auto"
    engine: str = "hf"  # the VLM engine of the shapes-* benches that run a model
    tasks: str | None = None  # lmms-eval task names, comma-separated (lmms)


@dataclass(frozen=True)
class Bench:
    help: str
    needs: tuple[tuple[str, ...], ...]  # alternatives: the options of any one of them, all given
    run: Callable[[Options], dict]

    def missing(self, options: Options) -> str | None:
        """None when one alternative of ``needs`` is complete, else what to give, e.g. "--answers and
        --instances, or --model, --images and --instances"."""
        if any(all(_given(getattr(options, name)) for name in need) for need in self.needs):
            return None
        return ", or ".join(_and([f"--{name.replace('_', '-')}" for name in need]) for need in self.needs)


def _given(value) -> bool:
    return value is not None and value != ()


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _suffix(options: Options) -> str:
    from prefgen.eval.shapes import SHORT_ANSWER

    return SHORT_ANSWER if options.short_answer else ""


def _shapes_chair(o: Options) -> dict:
    from prefgen.eval.shapes import shapes_chair

    return shapes_chair(o.model, o.n, o.seed, device=o.device, engine=o.engine)


def _shapes_pope(o: Options) -> dict:
    from prefgen.eval.shapes import shapes_pope

    return shapes_pope(o.model, o.n, o.seed, _suffix(o), device=o.device, engine=o.engine)


def _shapes_skills(o: Options) -> dict:
    from prefgen.eval.shapes import shapes_skills

    return shapes_skills(o.model, o.n, o.seed, _suffix(o), device=o.device, engine=o.engine)


def _shapes_clip(o: Options) -> dict:
    from prefgen.eval.shapes import shapes_clip

    return shapes_clip(o.clip, o.n, o.seed, device=o.device)


def _chair(o: Options) -> dict:
    from prefgen.eval import chair

    if o.answers:
        if len(o.answers) > 1:
            raise PrefgenError("--bench chair reads one --answers file")
        return chair.evaluate_captions(o.answers[0], o.instances, o.captions, o.synonyms, o.image_ids)
    from prefgen.eval.shapes import load_vlm
    from prefgen.shapes.metrics import vlm_describer

    images = chair.ChairImages(o.instances, o.captions, o.images, o.image_ids, o.synonyms, o.limit)
    prompt, tokens = o.prompt or DESCRIBE, o.max_new_tokens or 512
    describe = vlm_describer(load_vlm(o.model, o.device), prompt, tokens)
    return {
        "bench": "chair",
        "model": str(o.model),
        "prompt": prompt,
        "max_new_tokens": tokens,
        **images.evaluate(describe),
    }


def _pope(o: Options) -> dict:
    from prefgen.eval import pope

    if o.answers:
        return pope.evaluate_answers(o.answers, o.questions)
    from prefgen.eval.shapes import load_vlm
    from prefgen.shapes.metrics import vlm_answerer

    files = [pope.read_questions(path) for path in o.questions]
    answer = vlm_answerer(load_vlm(o.model, o.device), _suffix(o), o.max_new_tokens or 8)
    return {
        "bench": "pope",
        "model": str(o.model),
        "suffix": _suffix(o),
        **pope.evaluate_model(answer, files, o.images, o.limit),
    }


def _lmms(o: Options) -> dict:
    from prefgen.eval.lmms import lmms_bench

    tasks = [task.strip() for task in o.tasks.split(",") if task.strip()]
    return lmms_bench(o.model, tasks, o.n, o.seed, o.limit, o.device)


def _reward(o: Options) -> dict:
    return store_reward(o.store, o.ground_truth)


BENCHES: dict[str, Bench] = {
    "shapes-chair": Bench("CHAIR of a VLM's descriptions of held-out shapes scenes.", (("model",),), _shapes_chair),
    "shapes-pope": Bench(
        "POPE (random, popular, adversarial) on held-out shapes scenes.", (("model",),), _shapes_pope
    ),
    "shapes-skills": Bench(
        "QA by kind, self-questioning, self-enhancement and noised-image answers on shapes scenes.",
        (("model",),),
        _shapes_skills,
    ),
    "shapes-clip": Bench("A CLIP's present-vs-absent phrase AUC on shapes scenes.", (("clip",),), _shapes_clip),
    "chair": Bench(
        "CHAIR as the reference computes it: on --answers captions, or on a --model's captions of --images.",
        (("answers", "instances"), ("model", "instances", "images")),
        _chair,
    ),
    "pope": Bench(
        "POPE as its official script scores it: --answers joined on question_id, or a --model's answers.",
        (("answers", "questions"), ("model", "questions", "images")),
        _pope,
    ),
    "lmms": Bench(
        "lmms-eval's --tasks on a merged --model folder, in a subprocess (the lmms extra); its own scoring, "
        "labelled lmms.*; shapes_pope and shapes_caption are written from --n shapes scenes.",
        (("model", "tasks"),),
        _lmms,
    ),
    "reward": Bench(
        "How often a shapes store's chosen answer is truly better, by the scenes' ground truth.",
        (("store", "ground_truth"),),
        _reward,
    ),
}


def store_reward(store: str, ground_truth: str | Path) -> dict:
    """Reward accuracy and length bias of a store version (``STORE`` or ``STORE@VERSION``), overall and per
    method; pairs whose image has no ground truth are counted and left out."""
    import pyarrow.parquet as pq

    from prefgen.shapes import judge
    from prefgen.shapes.world import read_ground_truth
    from prefgen.store.query import parse_ref

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
    from prefgen.core.config import resolve_path
    from prefgen.shapes.world import GROUND_TRUTH

    path = getattr(source, "path", None)
    if not path:
        return None
    found = resolve_path(path, Path(recipe).parent)
    found = (found if found.is_dir() else found.parent) / GROUND_TRUTH
    return found if found.is_file() else None


def pair_directions(store: str) -> dict:
    """The direction bias of a store version's rejected numbers (``pair_text.direction_bias``): label-free, so
    every rounds loop records it (``directions.bias``)."""
    import pyarrow.parquet as pq

    from prefgen.stages.pair_text import direction_bias
    from prefgen.store.query import parse_ref

    handle, version = parse_ref(store)
    files = [str(f) for f in handle.data_files(version)]
    table = pq.read_table(files, columns=["chosen", "rejected"]).to_pylist()
    return direction_bias((_last_text(row["chosen"]), _last_text(row["rejected"])) for row in table)


def pair_judge(ground_truth: str | Path):
    """``judge(STORE@VERSION) -> {pairs, accuracy, better, tie, worse, chosen_longer, by_kind}`` for the rounds
    loop: how often a version's chosen answer is truly better, by the ground truth of the images it was built from,
    overall and per kind of prompt (``by_kind``: pairs, better / tie / worse, chosen / rejected correct)."""
    keys = ("pairs", "accuracy", "better", "tie", "worse", "chosen_longer", "by_kind")

    def run(ref: str) -> dict:
        found = store_reward(ref, ground_truth)["all"]
        return {key: found[key] for key in keys}

    return run


def _last_text(messages) -> str:
    if isinstance(messages, str):
        return messages
    return messages[-1]["content"] if messages else ""
