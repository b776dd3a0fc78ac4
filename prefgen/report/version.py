"""What the version report and the comparison of two versions show, gathered from the manifest, the rejects and
the rows."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import yaml

from prefgen.report.charts import PALETTE, histogram_svg
from prefgen.report.pairs import read_gallery, read_scores
from prefgen.store.card import SCORE_COLUMNS, stage_rows
from prefgen.store.folder import Store
from prefgen.store.manifest import Manifest

PAGE_SIZE = 50


def version_context(store: Store, version: str | None) -> dict[str, Any]:
    """Everything the version template shows: summary, drops, stages, models, recipe, charts, gallery data."""
    manifest = store.manifest(version)
    gallery = read_gallery(store, manifest.version)
    scores = read_scores(store, manifest.version)
    methods = Counter(row.get("me", "") for row in gallery.rows)
    sources = Counter(row.get("qs", "") for row in gallery.rows)
    charts = [
        histogram_svg(
            "Scores: chosen vs rejected",
            [
                ("chosen", scores.get("chosen_score", []), PALETTE[0]),
                ("rejected", scores.get("rejected_score", []), PALETTE[1]),
            ],
        )
    ]
    charts.append(histogram_svg("Margin (chosen - rejected)", [("margin", scores.get("margin", []), PALETTE[2])]))
    if len(methods) > 1:
        by_method: dict[str, list[float]] = {}
        for row in gallery.rows:
            if row.get("m") is not None:
                by_method.setdefault(row.get("me", ""), []).append(row["m"])
        charts.append(
            histogram_svg(
                "Margin by method",
                [(m or "?", v, PALETTE[i % len(PALETTE)]) for i, (m, v) in enumerate(sorted(by_method.items()))],
            )
        )
    return {
        "title": f"{store.root.name}@{manifest.version}",
        "generated": _now(),
        "summary": summary(manifest),
        "drops": drops_table(store, manifest),
        "stages": stage_rows(manifest),
        "models": [(role, ref.id or ref.path or "", ref.revision or "") for role, ref in manifest.models.items()],
        "recipe": yaml.safe_dump(manifest.recipe, sort_keys=False) if manifest.recipe else "",
        "score_stats": score_stats(scores),
        "charts": charts,
        "methods": sorted(methods.items()),
        "sources": sorted(sources.items()),
        "pairs": gallery.rows,
        "has_sentences": any("csn" in row or "rsn" in row for row in gallery.rows),
        "thumbs": gallery.thumbs,
        "thumb_side": gallery.thumb_side,
        "notes": gallery.notes,
        "page_size": PAGE_SIZE,
    }


def compare_context(store: Store, old: str, new: str) -> dict[str, Any]:
    """Two versions side by side: summaries, drops, methods, score statistics and histograms, which pairs changed."""
    a, b = store.manifest(old), store.manifest(new)
    scores = {m.version: read_scores(store, m.version) for m in (a, b)}
    ids = {m.version: _column(store, m, "id") for m in (a, b)}
    drops = {m.version: {(stage, reason): n for stage, reason, n in drops_table(store, m)} for m in (a, b)}
    keys = sorted(set(drops[a.version]) | set(drops[b.version]))
    counts = {}
    for name in ("method", "question_source"):
        values = {m.version: Counter(_column(store, m, name)) for m in (a, b)}
        labels = sorted(set(values[a.version]) | set(values[b.version]), key=str)
        counts[name] = [
            (label or "-", values[a.version].get(label, 0), values[b.version].get(label, 0)) for label in labels
        ]
    charts = [
        histogram_svg(
            column,
            [
                (a.version, scores[a.version].get(column, []), PALETTE[2]),
                (b.version, scores[b.version].get(column, []), PALETTE[3]),
            ],
        )
        for column in SCORE_COLUMNS
    ]
    set_a, set_b = set(ids[a.version]), set(ids[b.version])
    return {
        "title": f"{store.root.name}: {a.version} vs {b.version}",
        "generated": _now(),
        "versions": (a.version, b.version),
        "summary": _side_by_side(dict(summary(a)), dict(summary(b))),
        "drops": [
            (stage, reason, drops[a.version].get((stage, reason), 0), drops[b.version].get((stage, reason), 0))
            for stage, reason in keys
        ],
        "counts": counts,
        "stats": [
            (column, score_stats(scores[a.version]).get(column), score_stats(scores[b.version]).get(column))
            for column in SCORE_COLUMNS
        ],
        "pairs": {"both": len(set_a & set_b), "only_old": len(set_a - set_b), "only_new": len(set_b - set_a)},
        "charts": charts,
        "recipes_differ": a.recipe_fingerprint != b.recipe_fingerprint or a.recipe != b.recipe,
    }


def summary(m: Manifest) -> list[tuple[str, Any]]:
    """The manifest's headline facts, in the order people ask for them."""
    dropped = sum(m.drops.values())
    items = [
        ("version", m.version),
        ("pairs", m.rows),
        ("dropped", dropped),
        ("candidate pairs", m.rows + dropped),
        ("parent", m.parent or "-"),
        ("origin", m.origin),
        ("created (UTC)", f"{m.created_at:%Y-%m-%d %H:%M:%S}"),
        ("message", m.message or "-"),
    ]
    if m.round is not None:
        items.append(("round", m.round))
    if isinstance(m.stats, dict) and m.stats.get("source_items") is not None:
        items.append(("source images", m.stats["source_items"]))
    items += [
        ("seed", m.seed if m.seed is not None else "-"),
        ("recipe fingerprint", m.recipe_fingerprint or "-"),
        ("prefgen", m.code_version),
    ]
    if m.query:
        items.append(("derived with", m.query))
    return items


def drops_table(store: Store, m: Manifest) -> list[tuple[str, str, int]]:
    """(stage, reason, count), most first: from the rejects file, or the manifest's counts (stage unknown)."""
    path = store.rejects_file(m.version)
    if path is not None:
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["stage", "reason"]).to_pydict()
        counted = Counter(zip(table["stage"], table["reason"]))
        if counted:
            return [(str(stage), str(reason), n) for (stage, reason), n in counted.most_common()]
    return [("-", reason, n) for reason, n in sorted(m.drops.items(), key=lambda kv: -kv[1])]


def score_stats(scores: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "n": len(values),
            "mean": statistics.fmean(values),
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
        for name, values in scores.items()
        if values
    }


def _side_by_side(left: dict, right: dict) -> list[tuple[str, Any, Any]]:
    return [(name, left.get(name, "-"), right.get(name, "-")) for name in dict.fromkeys([*left, *right])]


def _column(store: Store, m: Manifest, name: str) -> list:
    if name not in m.columns:
        return []
    import pyarrow.parquet as pq

    return [
        v for path in store.data_files(m.version) for v in pq.read_table(path, columns=[name]).column(name).to_pylist()
    ]


def _now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
