"""The functions lmms-eval calls for prefgen's shapes tasks (the task YAMLs name them as ``!function``).

Everything else in those tasks is lmms-eval's own: images reach the model through its ``pope_doc_to_visual``, the
question through its ``pope_doc_to_text``, and its POPE metrics (exact match of the lowercased answer against
yes/no; ``pope_yes_ratio`` is the share of *questions labelled* yes) come from ``lmms_eval.tasks.pope.utils``. On
top of those, each POPE answer is also scored by prefgen's rule (``shapes.metrics.parse_yes_no``: "no" or "not" in
the first sentence means no), so one run shows both scorings of the same answers. Captions are scored with the
shapes world's CHAIR against the scene each row carries (``shapes.metrics.chair``, as ``prefgen eval --bench
shapes-chair`` computes it).

This module imports no lmms-eval: the POPE results are built by lmms-eval's function inside
``pope_process_results``, which only lmms-eval calls.
"""

from __future__ import annotations

import json

from prefgen.shapes.metrics import chair, parse_yes_no, pope_metrics
from prefgen.shapes.world import Scene


def pope_process_results(doc: dict, results: list[str]) -> dict:
    """lmms-eval's POPE results for one answer, plus ``prefgen_pope_*`` entries with prefgen's reading of it."""
    from lmms_eval.tasks.pope.utils import pope_process_results as lmms_pope

    found = prefgen_pope_results(doc, results)
    return {**lmms_pope(doc, results), **found}


def prefgen_pope_results(doc: dict, results: list[str]) -> dict:
    said = {"label": doc["answer"].strip().lower() == "yes", "said_yes": parse_yes_no(results[0])}
    return {name: said for name in ("prefgen_pope_accuracy", "prefgen_pope_f1", "prefgen_pope_yes_ratio")}


def _prefgen_pope(results: list[dict], metric: str) -> float:
    return pope_metrics([r["label"] for r in results], [r["said_yes"] for r in results])[metric]


def prefgen_pope_accuracy(results: list[dict]) -> float:
    return _prefgen_pope(results, "accuracy")


def prefgen_pope_f1(results: list[dict]) -> float:
    return _prefgen_pope(results, "f1")


def prefgen_pope_yes_ratio(results: list[dict]) -> float:
    """The share of answers read as yes (lmms-eval's ``pope_yes_ratio`` counts labels instead)."""
    return _prefgen_pope(results, "yes_ratio")


CAPTION_METRICS = ("chair_s", "chair_i", "recall")


def caption_process_results(doc: dict, results: list[str]) -> dict:
    """The caption and its scene, for each CHAIR metric (CHAIR pools over captions, so it is computed at the end)."""
    return {name: {"text": results[0], "scene": doc["scene"]} for name in CAPTION_METRICS}


def _chair(results: list[dict], metric: str) -> float:
    scenes = [Scene.from_dict(json.loads(r["scene"])) for r in results]
    return chair([r["text"] for r in results], scenes)[metric]


def chair_s(results: list[dict]) -> float:
    return _chair(results, "chair_s")


def chair_i(results: list[dict]) -> float:
    return _chair(results, "chair_i")


def recall(results: list[dict]) -> float:
    return _chair(results, "recall")
