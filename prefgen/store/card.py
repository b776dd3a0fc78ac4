"""The store's dataset card (README.md). Its YAML header is what makes ``datasets.load_dataset(store)`` and the Hub
viewer find the data: one config per version, and ``default`` pointing at the latest. Below the version table, the
latest version's summary (rows, drops, per-stage counts and time, models, the recipe) comes from its manifest; a push
adds the score statistics and a histogram image (``images/<version>-scores.png``) drawn here with Pillow."""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import yaml

from prefgen.store.manifest import Manifest

SCORE_COLUMNS = ("chosen_score", "rejected_score", "margin")


def card_configs(manifests: list[Manifest]) -> list[dict]:
    def config(name: str, version: str) -> dict:
        return {"config_name": name, "data_files": [{"split": "train", "path": f"data/{version}/*.parquet"}]}

    if not manifests:
        return []
    latest = manifests[-1].version
    return [config("default", latest)] + [config(m.version, m.version) for m in reversed(manifests)]


def card_data_files(text: str) -> list[tuple[str, str]]:
    """(config name, data file pattern) for each config in a card's YAML header; a ValueError says why none can be
    read."""
    if not text.startswith("---\n") or "\n---" not in text[3:]:
        raise ValueError("the card does not start with a --- YAML block")
    try:
        header = yaml.safe_load(text[4 : text.index("\n---", 3)]) or {}
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    configs = header.get("configs") if isinstance(header, dict) else None
    found = []
    for config in configs if isinstance(configs, list) else []:
        files = config.get("data_files") if isinstance(config, dict) else None
        for entry in files if isinstance(files, list) else [files]:
            pattern = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(pattern, str):
                found.append((str(config.get("config_name")), pattern))
            elif isinstance(pattern, list):
                found += [(str(config.get("config_name")), str(p)) for p in pattern]
    return found


def card_infos(manifests: list[Manifest]) -> list[dict]:
    """Sizes per config. Besides informing readers, they make datasets' cache key differ between stores that share
    a folder name and version names: datasets hashes the card's configs and infos, not the files, for local folders."""

    def info(name: str, m: Manifest) -> dict:
        size = sum(f.bytes for f in m.files)  # datasets wants num_bytes in a split; the parquet size stands in
        return {
            "config_name": name,
            "download_size": size,
            "splits": [{"name": "train", "num_bytes": size, "num_examples": m.rows}],
        }

    if not manifests:
        return []
    return [info("default", manifests[-1])] + [info(m.version, m) for m in reversed(manifests)]


def card_license(manifests: list[Manifest]) -> str:
    """The license the newest build's recipe names (``output.license``); ``other`` when none does."""
    for manifest in reversed(manifests):
        named = ((manifest.recipe or {}).get("output") or {}).get("license")
        if named:
            return named
    return "other"


def render_card(
    title: str, manifests: list[Manifest], scores: dict[str, list[float]] | None = None, figure: str | None = None
) -> str:
    """The card. ``scores`` (score column -> the latest version's values) and ``figure`` (the repo path of its
    histogram image) add the score section; without them the summary holds what the manifest alone says."""
    header = {
        "configs": card_configs(manifests),
        "dataset_info": card_infos(manifests),
        "license": card_license(manifests),
        "tags": ["prefgen", "dpo", "preference", "vision-language", "synthetic"],
        "task_categories": ["image-text-to-text"],
    }
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).rstrip(),
        "---",
        f"# {title}",
        "",
        "Preference pairs for aligning vision-language models, built with prefgen.",
        "Each row holds `images`, `prompt`, `chosen` and `rejected` in the conversational format trl's",
        "`DPOTrainer` reads, plus scores and provenance columns.",
        "",
        "## Versions",
        "",
        "| version | rows | parent | created (UTC) | origin | message |",
        "|---|---|---|---|---|---|",
    ]
    for m in reversed(manifests):
        lines.append(
            f"| {m.version} | {m.rows} | {m.parent or ''} | {m.created_at:%Y-%m-%d %H:%M} | "
            f"{m.origin} | {_cell(m.message)} |"
        )
    latest = manifests[-1].version if manifests else "<version>"
    if manifests:
        lines += version_summary(manifests[-1], scores, figure)
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        f'pairs = load_dataset("<this repo or folder>", "{latest}", split="train")  # or the default config = latest',
        "# trl.DPOTrainer(model=..., train_dataset=pairs, processing_class=processor,\n"
        "#                 args=DPOConfig(max_length=None))",
        "```",
        "",
        "Each version's manifest (recipe, models, seeds, counts, fingerprints) is in `versions/<version>.json`.",
        "",
        f"License: `{card_license(manifests)}` (set by the recipe's `output.license`; the images' and the models' "
        "own terms apply to the rows they made).",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the summary


def version_summary(m: Manifest, scores: dict[str, list[float]] | None = None, figure: str | None = None) -> list[str]:
    """Markdown lines summing up one version: counts, drops, stages, models, scores, recipe."""
    kept = m.rows + sum(m.drops.values())
    origin = (
        m.origin + (f", parent {m.parent}" if m.parent else "") + (f", round {m.round}" if m.round is not None else "")
    )
    lines = [
        "",
        f"## {m.version} at a glance",
        "",
        f"- **{m.rows} pairs** ({origin}), created {m.created_at:%Y-%m-%d %H:%M} UTC",
    ]
    if m.drops:
        dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(m.drops.items(), key=lambda kv: -kv[1]))
        lines.append(f"- **dropped {sum(m.drops.values())}** of {kept} candidate pairs: {dropped}")
    if m.models:
        models = ", ".join(
            f"{role} `{ref.id or ref.path}`" + (f"@{ref.revision}" if ref.revision else "")
            for role, ref in m.models.items()
        )
        lines.append(f"- models: {models}")
    if m.query:
        lines.append(f"- derived with `{_cell(m.query)}`")
    stages = stage_rows(m)
    if stages:
        lines += ["", "| stage | rows in | errors | seconds |", "|---|---|---|---|"]
        lines += [f"| {name} | {seen} | {errors} | {seconds} |" for name, seen, errors, seconds in stages]
    if scores:
        lines += ["", "| score | n | mean | median | min | max |", "|---|---|---|---|---|---|"]
        for name in SCORE_COLUMNS:
            values = [v for v in scores.get(name, []) if _finite(v)]
            if values:
                lines.append(
                    f"| {name} | {len(values)} | {_num(statistics.fmean(values))} | "
                    f"{_num(statistics.median(values))} | {_num(min(values))} | {_num(max(values))} |"
                )
    if figure:
        lines += ["", f"![Scores of {m.version}: chosen vs rejected, and margins]({figure})"]
    if m.recipe:
        lines += [
            "",
            "<details><summary>Recipe</summary>",
            "",
            "```yaml",
            yaml.safe_dump(m.recipe, sort_keys=False).rstrip(),
            "```",
            "",
            "</details>",
        ]
    return lines


def stage_rows(m: Manifest) -> list[tuple[str, str, str, str]]:
    """(stage, rows seen, errors, seconds) per stage from the manifest's build stats, as text."""
    stages = m.stats.get("stages") if isinstance(m.stats, dict) else None
    if not isinstance(stages, dict):
        return []
    rows = []
    for name, info in stages.items():
        info = info if isinstance(info, dict) else {}
        seconds = info.get("seconds")
        rows.append(
            (
                str(name),
                str(info.get("rows_seen", "")),
                str(info.get("errors", "")),
                f"{seconds:.2f}" if isinstance(seconds, (int, float)) else "",
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------- the histogram


def read_score_columns(files: Sequence[Path], columns: Sequence[str]) -> dict[str, list[float]]:
    """The finite values of ``columns`` in parquet ``files`` (a version's shards), without reading images."""
    import pyarrow.parquet as pq

    found: dict[str, list[float]] = {c: [] for c in columns}
    if not columns:
        return found
    for path in files:
        table = pq.read_table(path, columns=list(columns))
        for c in columns:
            found[c] += [v for v in table.column(c).to_pylist() if _finite(v)]
    return found


def bin_counts(
    values: Sequence[float], bins: int = 20, lo: float | None = None, hi: float | None = None
) -> tuple[list[float], list[int]]:
    """(bins + 1 edges, bins counts) over [lo, hi] (default: the values' range); non-finite values are skipped."""
    values = [v for v in values if _finite(v)]
    lo = min(values, default=0.0) if lo is None else lo
    hi = max(values, default=1.0) if hi is None else hi
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        if lo <= v <= hi:
            counts[min(int((v - lo) / width), bins - 1)] += 1
    return [lo + i * width for i in range(bins + 1)], counts


CHOSEN_COLOUR, REJECTED_COLOUR, MARGIN_COLOUR = (46, 139, 87), (200, 64, 64), (70, 110, 190)


def score_histogram_png(scores: dict[str, list[float]], title: str = "", bins: int = 24) -> bytes:
    """Two panels as a PNG: chosen vs rejected scores overlaid on shared bins, and the margins."""
    from PIL import Image, ImageDraw

    panel_w, panel_h, top = 380, 230, 28
    image = Image.new("RGB", (2 * panel_w, panel_h + top), "white")
    draw = ImageDraw.Draw(image)
    font = _font(13)
    draw.text((10, 6), title, fill="black", font=font)
    both = [v for k in ("chosen_score", "rejected_score") for v in scores.get(k, []) if _finite(v)]
    lo, hi = (min(both), max(both)) if both else (0.0, 1.0)
    _panel(
        draw,
        (0, top, panel_w, panel_h),
        "score: chosen / rejected",
        [
            (bin_counts(scores.get("chosen_score", []), bins, lo, hi), CHOSEN_COLOUR),
            (bin_counts(scores.get("rejected_score", []), bins, lo, hi), REJECTED_COLOUR),
        ],
        font,
    )
    _panel(
        draw,
        (panel_w, top, panel_w, panel_h),
        "margin (chosen - rejected)",
        [(bin_counts(scores.get("margin", []), bins), MARGIN_COLOUR)],
        font,
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _panel(draw, box, label, series, font) -> None:
    x0, y0, w, h = box
    left, right, bottom, top = x0 + 44, x0 + w - 14, y0 + h - 34, y0 + 24
    draw.text((left, y0 + 2), label, fill="black", font=font)
    peak = max((max(counts) for (_, counts), _ in series), default=0) or 1
    for (_edges, counts), colour in series:
        span = right - left
        for i, count in enumerate(counts):
            if not count:
                continue
            xa = left + span * i / len(counts)
            xb = left + span * (i + 1) / len(counts) - 1
            ya = bottom - (bottom - top) * count / peak
            fill = tuple(int(c + (255 - c) * 0.35) for c in colour)
            draw.rectangle([xa, ya, xb, bottom], fill=fill, outline=colour)
    edges = series[0][0][0]
    draw.line([left, bottom, right, bottom], fill="black")
    draw.line([left, top, left, bottom], fill="black")
    for frac in (0.0, 0.5, 1.0):
        x = left + (right - left) * frac
        value = edges[0] + (edges[-1] - edges[0]) * frac
        text = _num(value)
        draw.line([x, bottom, x, bottom + 4], fill="black")
        draw.text((x - draw.textlength(text, font=font) / 2, bottom + 6), text, fill="black", font=font)
    draw.text((x0 + 4, top - 6), str(peak), fill="black", font=font)
    draw.text((x0 + 4, bottom - 14), "0", fill="black", font=font)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow without FreeType has only the fixed bitmap font
        return ImageFont.load_default()


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: float) -> str:
    return f"{value:.4g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
