"""A version's rows as the gallery shows them: question, chosen and rejected text, their scores, the per-sentence
scores where the rows keep them, and thumbnails.

Per-sentence scores come from what is stored: CSR's beam search keeps every sentence's CLIP score, log-probability
and reward (``csr_chosen_steps`` / ``csr_rejected_steps``); ``clip_score`` keeps per-sentence CLIP scores of the
column it scored (``<column>_clip_sentences``). Answer-level scores are the contract's ``chosen_clip`` /
``chosen_logp`` columns and every ``<column>_<name>`` score of the candidate column ``select_pairs`` picked from
(its recipe says which), taken at the picked candidate when the column held several.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prefgen.report.thumbs import Thumbnails, thumbnail_side
from prefgen.store.card import SCORE_COLUMNS, read_score_columns
from prefgen.store.folder import Store
from prefgen.store.manifest import Manifest

BASE_COLUMNS = (
    "id",
    "image_id",
    "question",
    "question_source",
    "method",
    "prompt",
    "chosen",
    "rejected",
    "chosen_score",
    "rejected_score",
    "margin",
    "corruption",
    "csr_chosen_steps",
    "csr_rejected_steps",
    "chosen_clip",
    "rejected_clip",
    "chosen_logp",
    "rejected_logp",
)
_STEP_SCORES = (("clip", "clip"), ("logprob_mean", "logp"), ("reward", "reward"))


@dataclass
class Gallery:
    """Rows for the page's script (short keys keep 10,000 pairs small) and the thumbnails they point at."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    thumbs: list[str] = field(default_factory=list)
    thumb_side: int = 0
    notes: list[str] = field(default_factory=list)


def candidate_columns(manifest: Manifest) -> dict[str, str]:
    """{"chosen": column, "rejected": column} that the recipe's ``select_pairs`` picked answers from, if known."""
    stages = (manifest.recipe or {}).get("stages") or []
    for stage in reversed(stages):
        if isinstance(stage, dict) and stage.get("type") == "select_pairs":
            return {side: stage[side] for side in ("chosen", "rejected") if isinstance(stage.get(side), str)}
    return {}


def read_scores(store: Store, version: str) -> dict[str, list[float]]:
    """The score columns of a version (those it has), without reading images."""
    columns = [c for c in SCORE_COLUMNS if c in store.manifest(version).columns]
    return read_score_columns(store.data_files(version), columns)


def read_gallery(store: Store, version: str, *, thumbnails: bool = True) -> Gallery:
    """Every row of ``version`` as a gallery entry, with thumbnails (clean and corrupted) unless told not to."""
    manifest = store.manifest(version)
    picked = candidate_columns(manifest)
    extra = _score_columns(manifest, picked)
    wanted = [
        c
        for c in (*BASE_COLUMNS, *picked.values(), *[c for cols in extra.values() for c in cols])
        if c in manifest.columns
    ]
    wanted = list(dict.fromkeys(wanted))
    gallery = Gallery()
    images = thumbnails and "images" in manifest.columns
    thumbs = None
    if images:
        thumbs = Thumbnails(thumbnail_side(_image_count(store, version, manifest)))
        gallery.thumb_side = thumbs.side
    failures = 0
    for batch in _batches(store, version, wanted + (["images"] if images else [])):
        for i in range(len(batch[wanted[0]] if wanted else batch["images"])):
            row = {c: batch[c][i] for c in batch}
            entry = _entry(row, picked, extra)
            if thumbs is not None:
                cell = (row.get("images") or [None])[0]
                entry["t"] = thumbs.clean(cell, row.get("image_id"))
                corruption = row.get("corruption")
                if corruption:
                    entry["ct"], why = thumbs.corrupted(cell, row.get("image_id"), corruption)
                    if why:
                        entry["cn"] = why
                        failures += 1
            gallery.rows.append(entry)
    if thumbs is not None:
        gallery.thumbs = thumbs.data
    if failures:
        gallery.notes.append(f"{failures} corrupted image(s) could not be recreated (see those pairs)")
    return gallery


# ---------------------------------------------------------------------------------------------- one row


def _entry(row: dict[str, Any], picked: dict[str, str], extra: dict[str, list[str]]) -> dict[str, Any]:
    chosen, rejected = _last_text(row.get("chosen")), _last_text(row.get("rejected"))
    question = row.get("question") or _last_text(row.get("prompt"))
    entry: dict[str, Any] = {
        "id": row.get("id"),
        "q": question,
        "c": chosen,
        "r": rejected,
        "cs": _num(row.get("chosen_score")),
        "rs": _num(row.get("rejected_score")),
        "m": _num(row.get("margin")),
        "me": row.get("method") or "",
        "qs": row.get("question_source") or "",
    }
    if row.get("corruption"):
        entry["cd"] = corruption_label(row["corruption"])
    for side, text, key in (("chosen", chosen, "c"), ("rejected", rejected, "r")):
        scores, sentences = _answer_scores(row, side, text, picked.get(side), extra.get(side, []))
        if scores:
            entry[f"{key}x"] = scores
        if sentences:
            entry[f"{key}sn"] = sentences
    for key in ("c", "r"):  # the sentences spell the answer out: the page joins them instead of a second copy
        if " ".join(s[0] for s in entry.get(f"{key}sn") or []) == entry[key] and entry[key]:
            del entry[key]
    return {k: v for k, v in entry.items() if v is not None and (v != "" or k in ("c", "r"))}


def _answer_scores(row, side: str, text: str, column: str | None, extra: list[str]):
    """({score name: value} for the answer, [[sentence, {score: value}], ...] or None)."""
    scores: dict[str, float] = {}
    for name in ("clip", "logp"):
        value = _num(row.get(f"{side}_{name}"))
        if value is not None:
            scores[name] = value
    sentences = None
    steps = row.get(f"csr_{side}_steps")
    if isinstance(steps, list) and steps:
        sentences = [
            [
                str(step.get("text", "")),
                {short: _num(step.get(key)) for key, short in _STEP_SCORES if _num(step.get(key)) is not None},
            ]
            for step in steps
            if isinstance(step, dict)
        ]
    if column is not None:
        index = _candidate_index(row.get(column), text)
        for name in extra:
            value = row.get(name)
            if index is not None:  # a list of candidates: the picked one's score, if the answer is one of them
                value = value[index] if isinstance(value, list) and 0 <= index < len(value) else None
            suffix = name[len(column) + 1 :]
            if suffix == "clip_sentences":
                if sentences is None and isinstance(value, list):
                    sentences = _zip_sentences(text, value)
            elif _num(value) is not None:
                scores.setdefault(suffix, _num(value))
    return scores, sentences


def _candidate_index(candidates: Any, text: str) -> int | None:
    """Which candidate the answer is: None for a single-answer column, the matching index for a list."""
    if not isinstance(candidates, list):
        return None
    wanted = " ".join(text.split())
    for i, candidate in enumerate(candidates):
        if isinstance(candidate, str) and " ".join(candidate.split()) == wanted:
            return i
    return -1  # a list, but no candidate reads like the answer: take no score from it


def _zip_sentences(text: str, values: list) -> list | None:
    from prefgen.models.sentences import split_sentences

    sentences = split_sentences(text)
    if len(sentences) != len(values) or not sentences:
        return None
    return [[s, {"clip": _num(v)} if _num(v) is not None else {}] for s, v in zip(sentences, values)]


def corruption_label(corruption: str) -> str:
    """A short description of a ``corruption`` value: its ops and their main settings."""
    import json

    try:
        ops = json.loads(corruption).get("ops") or []
    except (ValueError, AttributeError):
        return "corruption (unreadable)"
    labels = []
    for op in ops:
        if not isinstance(op, dict):
            continue
        name = op.get("op", "?")
        detail = {"diffusion_noise": lambda o: f"t={o.get('t')} {o.get('space', '')}".strip()}.get(name)
        labels.append(f"{name} {detail(op)}" if detail else str(name))
    return ", ".join(labels) or "corruption"


# ---------------------------------------------------------------------------------------------- reading


def _score_columns(manifest: Manifest, picked: dict[str, str]) -> dict[str, list[str]]:
    """Per side, the stored ``<column>_*`` score columns of the candidate column it was picked from."""
    found = {}
    for side, column in picked.items():
        found[side] = [
            c
            for c in manifest.columns
            if c.startswith(column + "_") and c not in BASE_COLUMNS and not c.endswith(("_improved", "_attempts"))
        ]
    return found


def _image_count(store: Store, version: str, manifest: Manifest) -> int:
    """Thumbnails the gallery will hold: distinct images plus corrupted ones."""
    columns = [c for c in ("image_id", "corruption") if c in manifest.columns]
    if "image_id" not in columns:
        return manifest.rows * (2 if "corruption" in columns else 1)
    ids, corrupted = set(), 0
    for batch in _batches(store, version, columns):
        ids.update(batch["image_id"])
        corrupted += sum(1 for c in batch.get("corruption", []) if c)
    return len(ids) + corrupted


def _batches(store: Store, version: str, columns: list[str]) -> Iterator[dict[str, list]]:
    import pyarrow.parquet as pq

    for path in store.data_files(version):
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=256, columns=columns):
            yield batch.to_pydict()


def _last_text(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return str(messages[-1].get("content") or "")
    return ""


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(f"{value:.4g}")
