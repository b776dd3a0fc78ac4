"""Charts as inline SVG text, drawn here: histograms (one or several series on shared bins), line charts over rounds
(one line per run) and stacked bars. No JavaScript, no fonts, nothing fetched: the report opens offline. Every label
is escaped, since run names and metric names come from folders and files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from prefgen.store.card import bin_counts

PALETTE = ("#2e8b57", "#c84040", "#466ebe", "#d08a1e", "#8a4fb0", "#2a9d9d", "#777777", "#b05a7a")
WIDTH, HEIGHT = 420, 230
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 58, 22, 30, 40
# Later series are drawn thinner and dashed, so a line hidden under another (equal values) still shows.
_DASHES = ("", "6 3", "2 3", "8 3 2 3")


def histogram_svg(title: str, series: Sequence[tuple[str, Sequence[float], str]], bins: int = 30) -> Markup:
    """Histograms of ``series`` (label, values, colour) on bins shared over their common range, the series' bars
    side by side within each bin."""
    finite = [v for _, values, _ in series for v in values if _finite(v)]
    if not finite:
        return _empty(title, "no values")
    lo, hi = min(finite), max(finite)
    binned = [(label, *bin_counts(values, bins, lo, hi), colour) for label, values, colour in series]
    edges = binned[0][1]
    peak = max(max(counts) for _, _, counts, _ in binned) or 1
    x, y = _scale(edges[0], edges[-1]), _scale(0, peak, vertical=True)
    parts = _frame(title, edges[0], edges[-1], 0, peak, x, y)
    for j, (label, _, counts, colour) in enumerate(binned):  # several series: side by side within each bin
        for i, count in enumerate(counts):
            if count:
                width = (x(edges[i + 1]) - x(edges[i])) / len(binned)
                xa = x(edges[i]) + j * width
                parts.append(
                    f'<rect x="{xa:.1f}" y="{y(count):.1f}" width="{max(width - 0.5, 1):.1f}" '
                    f'height="{y(0) - y(count):.1f}" fill="{colour}" fill-opacity="0.7" stroke="{colour}">'
                    f"<title>{escape(label)}: {count} in [{_fmt(edges[i])}, {_fmt(edges[i + 1])})</title>"
                    "</rect>"
                )
    parts += _legend([(f"{label} (n={sum(counts)})", colour) for label, _, counts, colour in binned])
    return _svg(title, parts)


def line_svg(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float]], str]],
    x_label: str = "round",
    marks: Sequence[tuple[float, str]] = (),
) -> Markup:
    """Lines of (x, y) points, one per series (label, points, colour); integer x ticks when x are rounds; ``marks``
    (x, label) draw labelled vertical guides (where a round starts on a per-step chart)."""
    points = [(px, py) for _, pts, _ in series for px, py in pts if _finite(py)]
    if not points:
        return _empty(title, "no values")
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.5 * (abs(y_lo) or 1), y_hi + 0.5 * (abs(y_hi) or 1)
    pad = 0.08 * (y_hi - y_lo)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    x, y = _scale(x_lo, x_hi), _scale(y_lo, y_hi, vertical=True)
    integer_x = all(float(p[0]).is_integer() for p in points) and x_hi - x_lo <= 20
    parts = _frame(title, x_lo, x_hi, y_lo, y_hi, x, y, integer_x=integer_x, x_label=x_label)
    for at, mark in marks:
        parts.append(
            f'<line x1="{x(at):.1f}" y1="{_PAD_T}" x2="{x(at):.1f}" y2="{HEIGHT - _PAD_B}" stroke="#999" '
            f'stroke-dasharray="3 3"/><text x="{x(at) + 3:.1f}" y="{_PAD_T + 9}" font-size="9" '
            f'fill="#777">{escape(mark)}</text>'
        )
    for i, (label, pts, colour) in enumerate(series):
        pts = [(px, py) for px, py in pts if _finite(py)]
        width, radius = max(3.5 - 1.0 * i, 1.5), max(5.0 - 1.2 * i, 2.5)
        if len(pts) > 1:
            path = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in pts)
            dash = _DASHES[i % len(_DASHES)]
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="{width}"'
                + (f' stroke-dasharray="{dash}"' if dash else "")
                + "/>"
            )
        if len(pts) <= 40:
            for px, py in pts:
                parts.append(
                    f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="{radius}" fill="{colour}">'
                    f"<title>{escape(label)}, {x_label} {_fmt(px)}: {_fmt(py)}</title></circle>"
                )
    if len(series) > 1 or series[0][0]:
        parts += _legend([(label, colour) for label, _, colour in series], lines=True)
    return _svg(title, parts)


def stacked_svg(
    title: str,
    groups: Sequence[tuple[str, Sequence[tuple[str, dict[str, float]]]]],
    parts_order: Sequence[tuple[str, str]],
) -> Markup:
    """Stacked bars: ``groups`` of (group label, [(bar label, {part: value})]); ``parts_order`` (part, colour)."""
    bars = [(g, b, values) for g, group in groups for b, values in group]
    if not bars:
        return _empty(title, "no values")
    peak = max(sum(values.get(p, 0) for p, _ in parts_order) for _, _, values in bars) or 1
    x, y = (
        _scale(
            0,
            len(bars),
        ),
        _scale(0, peak, vertical=True),
    )
    parts = _frame(title, 0, len(bars), 0, peak, x, y, x_ticks=False)
    slot = x(1) - x(0)
    for i, (group, bar, values) in enumerate(bars):
        base = 0.0
        for part, colour in parts_order:
            value = values.get(part, 0) or 0
            if value:
                parts.append(
                    f'<rect x="{x(i) + 0.15 * slot:.1f}" y="{y(base + value):.1f}" width="{0.7 * slot:.1f}" '
                    f'height="{y(base) - y(base + value):.1f}" fill="{colour}" fill-opacity="0.8">'
                    f"<title>{escape(group)} {escape(bar)}: {escape(part)} {_fmt(value)}</title></rect>"
                )
            base += value
        label = escape(f"{group} {bar}".strip())
        parts.append(
            f'<text x="{x(i + 0.5):.1f}" y="{HEIGHT - _PAD_B + 14}" text-anchor="middle" font-size="10">{label}</text>'
        )
    parts += _legend(list(parts_order))
    return _svg(title, parts)


# ---------------------------------------------------------------------------------------------- drawing helpers


def _scale(lo: float, hi: float, vertical: bool = False):
    if vertical:
        top, bottom = _PAD_T, HEIGHT - _PAD_B
        return lambda v: bottom - (bottom - top) * (v - lo) / ((hi - lo) or 1)
    left, right = _PAD_L, WIDTH - _PAD_R
    return lambda v: left + (right - left) * (v - lo) / ((hi - lo) or 1)


def _frame(title, x_lo, x_hi, y_lo, y_hi, x, y, integer_x=False, x_ticks=True, x_label="") -> list[str]:
    bottom, left = HEIGHT - _PAD_B, _PAD_L
    parts = [
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
        f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - _PAD_R}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{left}" y1="{_PAD_T}" x2="{left}" y2="{bottom}" stroke="#333"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        value = y_lo + (y_hi - y_lo) * frac
        parts.append(
            f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="10">'
            f"{_tick(value, y_hi - y_lo)}</text>"
        )
    if x_ticks:
        ticks = (
            range(math.ceil(x_lo), math.floor(x_hi) + 1)
            if integer_x
            else [x_lo + (x_hi - x_lo) * f / 4 for f in range(5)]
        )
        for tick in ticks:
            parts.append(
                f'<line x1="{x(tick):.1f}" y1="{bottom}" x2="{x(tick):.1f}" y2="{bottom + 4}" stroke="#333"/>'
                f'<text x="{x(tick):.1f}" y="{bottom + 15}" text-anchor="middle" font-size="10">'
                f"{_fmt(tick)}</text>"
            )
        if x_label:
            parts.append(
                f'<text x="{WIDTH - _PAD_R}" y="{HEIGHT - 8}" text-anchor="end" font-size="10" '
                f'fill="#555">{escape(x_label)}</text>'
            )
    return parts


def _legend(entries: Sequence[tuple[str, str]], lines: bool = False) -> list[str]:
    """Swatches (or line samples, dashed as the lines are) with their labels, along the bottom edge."""
    parts, x = [], _PAD_L
    for i, (label, colour) in enumerate(entries):
        if lines:
            dash = _DASHES[i % len(_DASHES)]
            parts.append(
                f'<line x1="{x}" y1="{HEIGHT - 9}" x2="{x + 18}" y2="{HEIGHT - 9}" stroke="{colour}" '
                f'stroke-width="{max(3.5 - i, 1.5)}"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
            )
            x += 8
        else:
            parts.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="10">{escape(label)}</text>')
        x += 24 + 6 * len(label)
    return parts


def _svg(title: str, parts: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">' + "".join(parts) + "</svg>"
    )


def _empty(title: str, note: str) -> Markup:
    return _svg(
        title,
        [
            f'<text x="{_PAD_L}" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#888">{escape(note)}</text>',
        ],
    )


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _tick(value: float, span: float) -> str:
    """An axis label with as many decimals as the axis' span needs to tell its ticks apart (0.6924, not 0.692)."""
    if float(value).is_integer() and abs(value) < 1e6 and span >= 2:
        return str(int(value))
    if span <= 0 or abs(value) >= 1e5:
        return _fmt(value)
    decimals = min(max(0, 2 - math.floor(math.log10(span))), 8)
    return f"{value:.{decimals}f}"


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"
