"""Charts as inline SVG text, drawn here: histograms (one or several series on shared bins), line charts over rounds
(one line per run) and stacked bars. No JavaScript, no fonts, nothing fetched: the report opens offline. Every label
is escaped, since run names and metric names come from folders and files.

What makes them readable: axis ticks are round numbers (steps of 1, 2, 2.5 or 5 times a power of ten) and an axis
ends on ticks, so it crosses zero only when the values do; a metric that cannot be negative (``y_from_zero``) starts
at 0. Labels are placed with their width estimated generously (a character of DejaVu Sans,
the widest common sans-serif, is at most the widths in ``_char_width``): labels that would overlap are abbreviated
(bar labels become letters, keyed in the legend), thinned out (tick and guide labels) or cut with an ellipsis (titles,
legend entries), and the legend wraps onto as many rows as it needs, the chart growing downwards.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from prefgen.store.card import bin_counts

PALETTE = ("#2e8b57", "#c84040", "#466ebe", "#d08a1e", "#8a4fb0", "#2a9d9d", "#777777", "#b05a7a")
WIDTH, HEIGHT = 420, 230  # HEIGHT without the legend rows below the first
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 58, 22, 30, 40
_BOTTOM = HEIGHT - _PAD_B  # the x axis
_ROW = 14  # a legend row
_FONT, _TITLE_FONT = 10, 13
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
    y_ticks = nice_ticks(0, max(max(counts) for _, _, counts, _ in binned) or 1, integer=True)
    x, y = _scale(edges[0], edges[-1]), _scale(y_ticks[0], y_ticks[-1], vertical=True)
    x_ticks = [t for t in nice_ticks(edges[0], edges[-1], expand=False)]
    parts = _frame(title, y_ticks, x, y, x_ticks=x_ticks)
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
    legend, bottom = _legend([(f"{label} (n={sum(counts)})", colour) for label, _, counts, colour in binned])
    return _svg(title, parts + legend, bottom)


def line_svg(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float]], str]],
    x_label: str = "round",
    marks: Sequence[tuple[float, str]] = (),
    y_from_zero: bool = False,
) -> Markup:
    """Lines of (x, y) points, one per series (label, points, colour); integer x ticks when x are rounds; ``marks``
    (x, label) draw labelled vertical guides (where a round starts on a per-step chart). ``y_from_zero``: the
    metric cannot be negative, so its axis starts at 0."""
    points = [(px, py) for _, pts, _ in series for px, py in pts if _finite(py)]
    if not points:
        return _empty(title, "no values")
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    if y_from_zero and y_lo >= 0:
        y_lo = 0.0
    y_ticks = nice_ticks(y_lo, y_hi)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    x, y = _scale(x_lo, x_hi), _scale(y_ticks[0], y_ticks[-1], vertical=True)
    if all(float(p[0]).is_integer() for p in points) and x_hi - x_lo <= 20:
        x_ticks = list(range(math.ceil(x_lo), math.floor(x_hi) + 1))
    else:
        x_ticks = nice_ticks(x_lo, x_hi, expand=False)
    legend_entries = [(label, colour) for label, _, colour in series] if len(series) > 1 or series[0][0] else []
    legend, bottom = _legend(legend_entries, lines=True, reserve=_text_width(x_label) + 12 if x_label else 0)
    parts = _frame(title, y_ticks, x, y, x_ticks=x_ticks, x_label=x_label)
    parts += _marks(marks, x)
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
    return _svg(title, parts + legend, bottom)


def stacked_svg(
    title: str,
    groups: Sequence[tuple[str, Sequence[tuple[str, dict[str, float]]]]],
    parts_order: Sequence[tuple[str, str]],
    bar_colours: dict[str, str] | None = None,
) -> Markup:
    """Stacked bars: ``groups`` of (group label, [(bar label, {part: value})]); ``parts_order`` (part, colour).
    Bars are labelled under them and groups under their bars; bar labels too wide for their bar become letters
    explained in the legend. ``bar_colours`` (bar label -> colour) marks each bar with a strip of its label's colour
    under it, which alone tells the bars apart when even letters are too wide."""
    groups = [(g, list(bars)) for g, bars in groups if bars]
    if not groups:
        return _empty(title, "no values")
    gap = 0.6  # between groups, in bar widths
    slots, at = [], 0.0
    for _, bars in groups:
        slots.append([at + i for i in range(len(bars))])
        at += len(bars) + gap
    units = at - gap
    peak = max(sum(values.get(p, 0) or 0 for p, _ in parts_order) for _, bars in groups for _, values in bars)
    y_ticks = nice_ticks(0, peak or 1)
    x, y = _scale(0, units), _scale(y_ticks[0], y_ticks[-1], vertical=True)
    slot = x(1) - x(0)
    parts = _frame(title, y_ticks, x, y)
    names = [bar for _, bars in groups for bar, _ in bars]
    key = _abbreviations(names, slot)
    strips = bar_colours or {}
    for (group, bars), starts in zip(groups, slots):
        for (bar, values), start in zip(bars, starts):
            base = 0.0
            for part, colour in parts_order:
                value = values.get(part, 0) or 0
                if value:
                    parts.append(
                        f'<rect x="{x(start) + 0.1 * slot:.1f}" y="{y(base + value):.1f}" width="{0.8 * slot:.1f}" '
                        f'height="{y(base) - y(base + value):.1f}" fill="{colour}" fill-opacity="0.8">'
                        f"<title>{escape(group)} {escape(bar)}: {escape(part)} {_fmt(value)}</title></rect>"
                    )
                base += value
            if bar in strips:
                parts.append(
                    f'<rect x="{x(start) + 0.1 * slot:.1f}" y="{_BOTTOM + 2}" width="{0.8 * slot:.1f}" height="4" '
                    f'fill="{strips[bar]}"><title>{escape(bar)}</title></rect>'
                )
    labelled_bars = [
        (x(s + 0.5), key.get(bar, bar))
        for (_, bars), starts in zip(groups, slots)
        for (bar, _), s in zip(bars, starts)
    ]
    if strips and key and any(_text_width(letter) > slot - 2 for letter in key.values()):
        labelled_bars = []  # the strips' colours tell the bars apart; thinned letters would only confuse
    parts += _labels([(at, text) for at, text in labelled_bars if text], _BOTTOM + 16)
    group_row = _BOTTOM + (30 if any(text for _, text in labelled_bars) else 16)
    parts += _labels(
        [(x((starts[0] + starts[-1] + 1) / 2), group) for (group, _), starts in zip(groups, slots)], group_row
    )
    entries = list(parts_order)
    if key or strips:  # the bars' names: letters explained, strip colours shown
        shown = [name for name in dict.fromkeys(names) if name]
        entries += [(f"{key[n]} = {n}" if labelled_bars and n in key else n, strips.get(n), "strip") for n in shown]
    legend, bottom = _legend(entries, top=max(HEIGHT - 8, group_row + _ROW))
    return _svg(title, parts + legend, bottom)


# ---------------------------------------------------------------------------------------------- ticks


def nice_ticks(lo: float, hi: float, count: int = 5, expand: bool = True, integer: bool = False) -> list[float]:
    """Round ticks over [lo, hi]: multiples of the smallest step of 1, 2, 2.5 or 5 times a power of ten that makes at
    most ``count`` intervals. With ``expand`` the first and last tick enclose the range (an axis ends on ticks), else
    only ticks inside it. A flat range is widened around its value; ``integer``: no step below 1."""
    if not (_finite(lo) and _finite(hi)):
        return [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        lo, hi = (lo - 0.5 * abs(lo), hi + 0.5 * abs(hi)) if lo else (0.0, 1.0)
    power = 10.0 ** math.floor(math.log10((hi - lo) / count))
    for step in (m * power for m in (1, 2, 2.5, 5, 10, 20, 25, 50, 100)):
        if integer and step < 1:
            continue
        first = math.floor(lo / step + 1e-9) if expand else math.ceil(lo / step - 1e-9)
        last = math.ceil(hi / step - 1e-9) if expand else math.floor(hi / step + 1e-9)
        if last - first <= count:  # the densest round step with at most ``count`` intervals
            break
    return [_clean(k * step, step) for k in range(first, last + 1)]


def tick_label(value: float, step: float) -> str:
    """A tick as its step writes it: 0.25 with a step of 0.25, 0.4 with 0.2, 20 with 10; never -0.0."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 3
    if step > 0 and not math.isclose(round(step / 10.0**-decimals) * 10.0**-decimals, step, rel_tol=1e-9):
        decimals += 1  # a step of 2.5 (times a power of ten) needs one more digit
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _clean(value: float, step: float) -> float:
    """``k * step`` without the float noise (0.30000000000000004)."""
    return round(value, max(0, 2 - math.floor(math.log10(step))) + 2)


# ---------------------------------------------------------------------------------------------- drawing helpers


def _scale(lo: float, hi: float, vertical: bool = False):
    if vertical:
        top, bottom = _PAD_T, _BOTTOM
        return lambda v: bottom - (bottom - top) * (v - lo) / ((hi - lo) or 1)
    left, right = _PAD_L, WIDTH - _PAD_R
    return lambda v: left + (right - left) * (v - lo) / ((hi - lo) or 1)


def _frame(title, y_ticks, x, y, x_ticks=(), x_label="") -> list[str]:
    left = _PAD_L
    parts = [
        f'<text x="{left}" y="16" font-size="{_TITLE_FONT}" font-weight="600">'
        f"{escape(_fit(title, WIDTH - left - 6, _TITLE_FONT))}</text>",
        f'<line x1="{left}" y1="{_BOTTOM}" x2="{WIDTH - _PAD_R}" y2="{_BOTTOM}" stroke="#333"/>',
        f'<line x1="{left}" y1="{_PAD_T}" x2="{left}" y2="{_BOTTOM}" stroke="#333"/>',
    ]
    step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for value in y_ticks:
        parts.append(
            f'<line x1="{left - 3}" y1="{y(value):.1f}" x2="{left}" y2="{y(value):.1f}" stroke="#333"/>'
            f'<text x="{left - 5}" y="{y(value) + 3.5:.1f}" text-anchor="end" font-size="{_FONT}">'
            f"{tick_label(value, step)}</text>"
        )
    x_ticks = list(x_ticks)
    step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    labels = [(x(t), tick_label(t, step)) for t in x_ticks]
    for at, _ in labels:
        parts.append(f'<line x1="{at:.1f}" y1="{_BOTTOM}" x2="{at:.1f}" y2="{_BOTTOM + 4}" stroke="#333"/>')
    parts += _labels(labels, _BOTTOM + 16)
    if x_label:
        parts.append(
            f'<text x="{WIDTH - _PAD_R}" y="{HEIGHT - 8}" text-anchor="end" font-size="{_FONT}" '
            f'fill="#555">{escape(x_label)}</text>'
        )
    return parts


def _labels(labels: Sequence[tuple[float, str]], baseline: float) -> list[str]:
    """Centred labels along a row; when neighbours would touch, every second (third, ...) one is shown."""
    kept = _thinned(
        list(labels), lambda item: (item[0] - _text_width(item[1]) / 2, item[0] + _text_width(item[1]) / 2)
    )
    return [
        f'<text x="{at:.1f}" y="{baseline}" text-anchor="middle" font-size="{_FONT}">{escape(text)}</text>'
        for at, text in kept
    ]


def _thinned(items: list, span) -> list:
    """Every ``k``-th item for the smallest ``k`` at which the kept items' spans (left, right) keep 4 px apart."""
    for every in range(1, len(items) + 1):
        kept = items[::every]
        if all(span(b)[0] - span(a)[1] >= 4 for a, b in zip(kept, kept[1:])):
            return kept
    return items[:1]


def _marks(marks: Sequence[tuple[float, str]], x) -> list[str]:
    """Dashed vertical guides with their labels right of them (left of the last when it has no room); labels that
    would overlap are shortened to their last word (``round 2`` -> ``2``), then thinned."""
    parts = [
        f'<line x1="{x(at):.1f}" y1="{_PAD_T}" x2="{x(at):.1f}" y2="{_BOTTOM}" stroke="#999" stroke-dasharray="3 3"/>'
        for at, _ in marks
    ]

    def span(item):
        at, text = item
        width = _text_width(text, 9)
        return (at + 3, at + 3 + width) if at + 3 + width <= WIDTH - 2 else (at - 3 - width, at - 3)

    placed = [(x(at), label) for at, label in marks]
    if _thinned(placed, span) != placed:
        placed = [(at, label.split()[-1] if label.split() else label) for at, label in placed]
    for item in _thinned(placed, span):
        left = span(item)[0]
        parts.append(f'<text x="{left:.1f}" y="{_PAD_T + 9}" font-size="9" fill="#777">{escape(item[1])}</text>')
    return parts


def _abbreviations(names: Sequence[str], slot: float) -> dict[str, str]:
    """Letters for bar labels wider than a bar (A, B, ... in order of appearance), or none when all fit."""
    if all(_text_width(name) <= slot - 2 for name in names):
        return {}
    distinct = list(dict.fromkeys(n for n in names if n))
    letters = [string.ascii_uppercase[i % 26] * (1 + i // 26) for i in range(len(distinct))]
    return dict(zip(distinct, letters))


def _legend(entries: Sequence[tuple], lines: bool = False, top: float = HEIGHT - 8, reserve: float = 0):
    """Swatches (or line samples, dashed as the lines are; none for a colour of None) with their labels, in rows from
    the baseline ``top`` down, the first row leaving ``reserve`` pixels free on the right (the x axis' name). An entry
    is (label, colour) or (label, colour, "strip"): a flat swatch, as the strips under bars. Returns the parts and the
    baseline of the last row."""
    parts, x, row = [], float(_PAD_L), 0
    limit = WIDTH - 4 - reserve
    for i, (label, colour, *shape) in enumerate(entries):
        mark = 0 if colour is None else (26 if lines else 14)
        label = _fit(label, WIDTH - 4 - _PAD_L - mark)
        width = mark + _text_width(label)
        if x > _PAD_L and x + width > limit:
            x, row, limit = float(_PAD_L), row + 1, WIDTH - 4
        base = top + row * _ROW
        if colour is not None and lines:
            dash = _DASHES[i % len(_DASHES)]
            parts.append(
                f'<line x1="{x:.1f}" y1="{base - 4}" x2="{x + 20:.1f}" y2="{base - 4}" stroke="{colour}" '
                f'stroke-width="{max(3.5 - i, 1.5)}"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
            )
        elif colour is not None and shape == ["strip"]:
            parts.append(f'<rect x="{x:.1f}" y="{base - 6}" width="10" height="4" fill="{colour}"/>')
        elif colour is not None:
            parts.append(f'<rect x="{x:.1f}" y="{base - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + mark:.1f}" y="{base}" font-size="{_FONT}">{escape(label)}</text>')
        x += width + 14
    return parts, top + row * _ROW


def _svg(title: str, parts: list[str], bottom: float = HEIGHT - 8) -> Markup:
    height = max(HEIGHT, math.ceil(bottom + 8))
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}">' + "".join(parts) + "</svg>"
    )


def _empty(title: str, note: str) -> Markup:
    return _svg(
        title,
        [
            f'<text x="{_PAD_L}" y="16" font-size="{_TITLE_FONT}" font-weight="600">{escape(title)}</text>',
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#888">{escape(note)}</text>',
        ],
    )


# Character widths in em, at least those of DejaVu Sans (the widest common sans-serif, Debian's default).
_NARROW, _WIDE = set("fijlrtI.,:;'|!()[]/ -"), set("mwMW=@%…")


def _char_width(char: str) -> float:
    if char in _NARROW:
        return 0.42
    if char in _WIDE:
        return 1.0
    return 0.8 if char.isupper() else 0.66


def _text_width(text: str, size: float = _FONT) -> float:
    return size * sum(_char_width(c) for c in text)


def _fit(text: str, width: float, size: float = _FONT) -> str:
    """``text``, cut with an ellipsis to fit ``width`` pixels."""
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"
