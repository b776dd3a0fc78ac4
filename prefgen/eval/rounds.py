"""What `prefgen train --rounds --eval SPEC` measures after every round: the spec parser and the round evaluators.

A spec is ``KIND`` or ``KIND:KEY=VALUE[,KEY=VALUE...]``; a key taking several values joins them with ``+``:

    shapes | shapes-chair | shapes-pope | shapes-qa               the shapes world (``--eval-n`` scenes)
    pope:questions=coco_pope_random.json+coco_pope_popular.json,images=val2014[,limit=N][,suffix=llava|shapes|none]
    chair:instances=instances_val2014.json,images=val2014[,captions=captions_val2014.json][,ids=ids.txt]
          [,synonyms=synonyms.txt][,limit=N][,prompt=Describe this image.][,max_new_tokens=N]
    gate:images=FOLDER[,limit=N][,prompt=...][,max_new_tokens=N][,max_repeated_words=X][,max_repeated_sentences=X]
         [,max_length_drift=X][,max_base_logprob_drop=X]   label-free drift from the base model (``gate.py``)

Several ``--eval`` may be given; the model is loaded once per round for all of them. Each kind records one group
of metrics in the lineage (``chair``, ``pope``, ``qa``), so ``prefgen rounds --metric 'pope.*'`` and the rounds
report show them: ``pope.<split>.f1`` (the split named by its file: random, popular, adversarial, else the file's
stem), ``pope.mean_f1``, ``chair.chair_s``. Two specs that would write the same group are refused. Files are read
when the spec is parsed, so a bad path fails before any training. Adding a kind is one entry in ``KINDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from prefgen.core.errors import PrefgenError

POPE_SPLITS = ("random", "popular", "adversarial")
SUFFIXES = {
    "llava": "\nAnswer the question using a single word or phrase.",  # LLaVA-1.5's POPE prompt (docs/Evaluation.md)
    "shapes": "\nLook at the image and answer the question using a single word or phrase.",  # as sena.yaml
    "none": "",
}


class Model:
    """One round's model: its folder, and the VLM loaded from it on first use (shared by every evaluator)."""

    def __init__(self, path: Path, device: str = "auto"):
        self.path, self.device = Path(path), device

    @cached_property
    def vlm(self):
        from prefgen.eval.shapes import load_vlm

        return load_vlm(self.path, self.device)


Measure = Callable[[Model], dict[str, Any]]


@dataclass(frozen=True)
class Setting:
    """Common settings of every spec: the shapes scenes' count and seed, the device, the loop's base model."""

    n: int = 500
    seed: int = 0
    device: str = "auto"
    base: Path | None = None  # the model round 1 starts from (the gate compares every round with it)


@dataclass(frozen=True)
class Kind:
    help: str
    records: tuple[str, ...]  # the metric groups it writes into the lineage's ``eval``
    build: Callable[[dict[str, Any], Setting, str], Measure]  # (values, settings, the spec) -> measure
    keys: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()  # keys whose value is a "+"-joined list


def _shapes(parts: tuple[str, ...]):
    def build(values: dict, setting: Setting, spec: str) -> Measure:
        from prefgen.eval.shapes import measure_round

        return lambda model: measure_round(model.vlm, parts, setting.n, setting.seed)

    return build


def _pope(values: dict, setting: Setting, spec: str) -> Measure:
    from prefgen.eval import pope

    files = [pope.read_questions(path) for path in values["questions"]]
    suffix = values.get("suffix", "llava")
    if suffix not in SUFFIXES:
        raise PrefgenError(f"--eval {spec}: suffix must be one of {', '.join(SUFFIXES)}, not {suffix!r}")
    limit = _integer(values, "limit", spec)

    def measure(model: Model) -> dict:
        from prefgen.shapes.metrics import vlm_answerer

        found = pope.evaluate_model(vlm_answerer(model.vlm, SUFFIXES[suffix]), files, values["images"], limit)
        names = {name: split_name(name) for name in found["splits"]}
        if len(set(names.values())) < len(names):  # two files of one split: keep the files' names
            names = {name: name for name in names}
        splits = {names[name]: _pope_numbers(split) for name, split in found["splits"].items()}
        return {"pope": {**splits, "mean_f1": found["mean_f1"], "spec": spec}}

    return measure


def _pope_numbers(split: dict) -> dict:
    keys = ("accuracy", "precision", "recall", "f1", "yes_ratio")
    return {**{key: split[key] for key in keys}, "questions": split["n"], "missing": split["missing"]}


def split_name(stem: str) -> str:
    """``coco_pope_random`` -> ``random``: the POPE split a file's name says, else the name."""
    named = [split for split in POPE_SPLITS if split in stem]
    return named[0] if len(named) == 1 else stem


def _chair(values: dict, setting: Setting, spec: str) -> Measure:
    from prefgen.eval.benches import DESCRIBE
    from prefgen.eval.chair import ChairImages

    images = ChairImages(
        values["instances"],
        values.get("captions", ()),
        values["images"],
        values.get("ids"),
        values.get("synonyms"),
        _integer(values, "limit", spec),
    )
    prompt, tokens = values.get("prompt", DESCRIBE), _integer(values, "max_new_tokens", spec) or 512

    def measure(model: Model) -> dict:
        from prefgen.shapes.metrics import vlm_describer

        found = images.evaluate(vlm_describer(model.vlm, prompt, tokens))
        keys = ("chair_s", "chair_i", "recall")
        return {"chair": {**{k: found[k] for k in keys}, "captions": found["n_captions"], "spec": spec}}

    return measure


def _gate(values: dict, setting: Setting, spec: str) -> Measure:
    from prefgen.eval import gate
    from prefgen.eval.benches import DESCRIBE

    if setting.base is None:
        raise PrefgenError(f"--eval {spec}: the gate compares each round with the base model; none was given")
    files = gate.folder_images(values["images"], _integer(values, "limit", spec) or 200)
    if not files:
        raise PrefgenError(f"--eval {spec}: no images ({', '.join(gate.IMAGE_SUFFIXES)}) in {values['images']}")
    limits = {name: _number(values, f"max_{name}", spec) for name in gate.GATE_LIMITS if f"max_{name}" in values}
    prompt, tokens = values.get("prompt", DESCRIBE), _integer(values, "max_new_tokens", spec) or 64
    held: dict[str, Any] = {}  # the images, the base model and its descriptions: once per process

    def measure(model: Model) -> dict:
        from PIL import Image

        from prefgen.shapes.metrics import vlm_describer

        if not held:
            held["images"] = [Image.open(path).convert("RGB") for path in files]
            same = model.path.resolve() == Path(setting.base).resolve()
            held["base"] = model if same else Model(setting.base, setting.device)
            held["texts"] = vlm_describer(held["base"].vlm, prompt, tokens)(held["images"])
        images, base = held["images"], held["base"]
        texts = vlm_describer(model.vlm, prompt, tokens)(images)
        signals = gate.gate_signals(
            texts, held["texts"], lambda found: gate.mean_token_logprob(base.vlm, prompt, images, found)
        )
        if limits:
            signals["verdict"] = gate.verdict(signals, limits)
        return {"gate": {**signals, "images": len(files), "spec": spec}}

    return measure


def _number(values: dict, key: str, spec: str) -> float:
    try:
        return float(values[key])
    except ValueError:
        raise PrefgenError(f"--eval {spec}: {key} must be a number, not {values[key]!r}") from None


def _lmms(values: dict, setting: Setting, spec: str) -> Measure:
    from prefgen.eval.lmms import round_measure

    return round_measure(values, setting, spec)


KINDS: dict[str, Kind] = {
    **{
        name: Kind(f"the shapes world: {' + '.join(parts)} on --eval-n held-out scenes", parts, _shapes(parts))
        for name, parts in {
            "shapes": ("chair", "pope", "qa"),
            "shapes-chair": ("chair",),
            "shapes-pope": ("pope",),
            "shapes-qa": ("qa",),
        }.items()
    },
    "pope": Kind(
        "POPE question files (+-joined) on an image folder, scored by the official rule",
        ("pope",),
        _pope,
        keys=("questions", "images", "limit", "suffix"),
        required=("questions", "images"),
        lists=("questions",),
    ),
    "chair": Kind(
        "CHAIR as the reference computes it, on a VLM's descriptions of COCO images",
        ("chair",),
        _chair,
        keys=("instances", "captions", "images", "ids", "synonyms", "limit", "prompt", "max_new_tokens"),
        required=("instances", "images"),
        lists=("instances", "captions"),
    ),
    "gate": Kind(
        "label-free drift from the base model on a plain image folder: repeated words and sentences, length, the "
        "base's likelihood of the round's descriptions; a verdict with max_* limits",
        ("gate",),
        _gate,
        keys=(
            "images",
            "limit",
            "prompt",
            "max_new_tokens",
            "max_repeated_words",
            "max_repeated_sentences",
            "max_length_drift",
            "max_base_logprob_drop",
        ),
        required=("images",),
    ),
    "lmms": Kind(
        "lmms-eval's tasks (+-joined) on the round's model folder, its own scoring (shapes_* from --eval-n scenes)",
        ("lmms",),
        _lmms,
        keys=("tasks", "limit"),
        required=("tasks",),
        lists=("tasks",),
    ),
}


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``KIND:KEY=VALUE,...`` -> (kind, values), checked against ``KINDS``."""
    name, _, rest = spec.partition(":")
    kind = KINDS.get(name.strip())
    if kind is None:
        raise PrefgenError(f"--eval {spec}: unknown kind {name!r}; use one of {', '.join(KINDS)}")
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        if not equals or key not in kind.keys:
            known = ", ".join(kind.keys) or "none"
            raise PrefgenError(f"--eval {spec}: {item!r} is not KEY=VALUE with a key of {name} ({known})")
        values[key] = tuple(v for v in value.split("+") if v) if key in kind.lists else value
    missing = [key for key in kind.required if not values.get(key)]
    if missing:
        raise PrefgenError(f"--eval {spec}: {name} needs {', '.join(f'{k}=...' for k in missing)}")
    return name.strip(), values


def _integer(values: dict, key: str, spec: str) -> int | None:
    if key not in values:
        return None
    try:
        return int(values[key])
    except ValueError:
        raise PrefgenError(f"--eval {spec}: {key} must be an integer, not {values[key]!r}") from None


def round_evaluator(specs: Sequence[str], setting: Setting = Setting()) -> Callable[[Path], dict[str, Any]]:
    """``evaluate(model_dir) -> metrics`` for `prefgen train --rounds`, measuring every spec on one loaded model.
    Only numbers (and each spec, as text) are kept: the lineage holds no sample texts."""
    measures, owners = [], {}
    for spec in specs:
        name, values = parse_spec(spec)
        for group in KINDS[name].records:
            if group in owners:
                raise PrefgenError(f"--eval {owners[group]} and --eval {spec} both record {group}.*: keep one")
            owners[group] = spec
        measures.append(KINDS[name].build(values, setting, spec))

    def evaluate(model_dir: Path) -> dict[str, Any]:
        model, report = Model(model_dir, setting.device), {}
        for measure in measures:
            report.update(measure(model))
        return report

    return evaluate


def kinds_help() -> str:
    """One line per kind, for ``--eval``'s help text."""
    return "; ".join(
        f"{name}" + (f":{','.join(f'{k}=...' for k in kind.required)}" if kind.required else "")
        for name, kind in KINDS.items()
    )
