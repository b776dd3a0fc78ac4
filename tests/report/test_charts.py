"""Charts a reader can read: round ticks, axes of metrics that cannot be negative from 0, and no label drawn over
another, checked on the SVG text and, for the three-run rounds report, on the boxes Chromium lays the labels out in."""

from __future__ import annotations

import re

import pytest

from prefgen.report import write_report
from prefgen.report.charts import line_svg, nice_ticks, stacked_svg, tick_label
from prefgen.report.rounds import cannot_be_negative
from report.test_report import browser, make_rounds, open_page  # noqa: F401 (browser: the module's Chromium fixture)

RUNS = ("shapes-csr-three-rounds", "shapes-likelihood-three-rounds", "shapes-sena-ica-three-rounds")


def three_runs(tmp_path, rounds: int = 3):
    """Three rounds folders with long names, as `prefgen report a b c` gets them; CHAIR_s reaches 0."""
    return [
        make_rounds(
            tmp_path / name,
            chair=[0.4] + [max(0.0, 0.4 + (k - 1) * 0.05 * (r - 1)) for r in range(1, rounds)] + [0.0],
            accuracy=[0.5 + 0.01 * r for r in range(rounds)],
        )
        for k, name in enumerate(RUNS)
    ]


def y_ticks(svg: str) -> list[str]:
    return re.findall(r'<text x="53" y="[\d.]+" text-anchor="end" font-size="10">([^<]*)</text>', svg)


def chart(html: str, title: str) -> str:
    return re.search(rf'<svg[^>]*aria-label="{re.escape(title)}".*?</svg>', html, re.DOTALL).group(0)


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0.0, 0.6, ["0.0", "0.2", "0.4", "0.6"]),
        (0.69, 0.70, ["0.690", "0.692", "0.694", "0.696", "0.698", "0.700"]),
        (0.0, 1.05, ["0.00", "0.25", "0.50", "0.75", "1.00", "1.25"]),
        (-0.00029, -0.00029, ["-0.0005", "-0.0004", "-0.0003", "-0.0002", "-0.0001"]),  # a flat series
        (0.0, 37.0, ["0", "10", "20", "30", "40"]),
        (-0.012, 0.4, ["-0.1", "0.0", "0.1", "0.2", "0.3", "0.4"]),
    ],
)
def test_ticks_are_round_and_enclose_the_values(lo, hi, expected):
    ticks = nice_ticks(lo, hi)
    assert [tick_label(t, ticks[1] - ticks[0]) for t in ticks] == expected
    assert ticks[0] <= lo and ticks[-1] >= hi


def test_a_metric_that_cannot_be_negative_has_its_axis_from_zero():
    points = [("run", [(0, 0.4), (1, 0.3), (2, 0.25)], "#000")]
    assert y_ticks(line_svg("chair_s", points, y_from_zero=True)) == ["0.0", "0.1", "0.2", "0.3", "0.4"]
    assert y_ticks(line_svg("margin", points)) == ["0.25", "0.30", "0.35", "0.40"]
    # values at 0 never push the axis below it, with or without the flag
    assert y_ticks(line_svg("chair_s", [("run", [(0, 0.0), (1, 0.3)], "#000")]))[0] == "0.0"
    assert [cannot_be_negative(m) for m in ("eval.chair.chair_s", "train.loss/ica", "data.rows")] == [True] * 3
    assert not any(cannot_be_negative(m) for m in ("train.rewards/margins", "eval.x.logps", "rewards/chosen"))


def test_bar_labels_too_wide_for_their_bars_become_letters_with_a_key():
    groups = [(f"r{r}", [(name, {"better": 3, "worse": 1}) for name in RUNS]) for r in (1, 2)]
    svg = stacked_svg("verdicts", groups, [("better", "#0a0"), ("worse", "#a00")])
    bar_labels = re.findall(r'<text x="[\d.]+" y="206" text-anchor="middle" font-size="10">([^<]*)</text>', svg)
    assert bar_labels == ["A", "B", "C", "A", "B", "C"]
    assert [f"{letter} = {name}" in svg for letter, name in zip("ABC", RUNS)] == [True] * 3
    short = stacked_svg("verdicts", [("r1", [("a", {"better": 1}), ("b", {"better": 2})])], [("better", "#0a0")])
    assert re.findall(r'y="206" text-anchor="middle" font-size="10">([^<]*)<', short) == ["a", "b"]


def test_bars_too_narrow_even_for_letters_are_told_apart_by_their_runs_colours():
    colours = dict(zip(RUNS, ("#111111", "#222222", "#333333")))
    groups = [(f"r{r}", [(name, {"better": 3, "worse": 1}) for name in RUNS]) for r in range(1, 13)]
    svg = stacked_svg("verdicts", groups, [("better", "#0a0"), ("worse", "#a00")], colours)
    below = re.findall(r'y="(\d+)" text-anchor="middle" font-size="10">([^<]*)<', svg)
    assert below == [("206", f"r{r}") for r in range(1, 13)]  # the rounds under the bars, no thinned letters
    assert svg.count('height="4" fill="#222222"><title>shapes-likelihood-three-rounds</title>') == 12
    for name, colour in colours.items():  # the legend names each run beside a strip of its colour
        assert re.search(
            rf'width="10" height="4" fill="{colour}"/><text x="[\d.]+" y="[\d.]+" font-size="10">{name}<', svg
        )


def test_a_long_legend_wraps_and_the_chart_grows_to_hold_it():
    series = [(name, [(0, 0.1 * i), (1, 0.2)], "#000") for i, name in enumerate(RUNS)]
    svg = str(line_svg("chair_s", series))
    rows = sorted({float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)" font-size="10">shapes-', svg)})
    assert rows == [222.0, 236.0, 250.0]  # one run a row: two do not fit in 420 px beside the axis name
    assert 'height="258"' in svg and 'viewBox="0 0 420 258"' in svg


@pytest.mark.parametrize("rounds", [3, 12])
def test_rounds_report_of_three_runs_in_chromium_has_no_overlapping_labels(browser, tmp_path, rounds):  # noqa: F811
    page = write_report([str(p) for p in three_runs(tmp_path, rounds)], tmp_path / "rounds.html").path
    html = page.read_text(encoding="utf-8")
    assert y_ticks(chart(html, "chair.chair_s"))[0] == "0.0"
    open_page(browser, page)
    charts = browser.execute_script(
        """return [...document.querySelectorAll('svg.chart')].map(svg => {
             const box = svg.getBoundingClientRect();
             return {title: svg.getAttribute('aria-label'), svg: [box.left, box.top, box.right, box.bottom],
                     texts: [...svg.querySelectorAll('text')].map(t => {
                       const b = t.getBoundingClientRect();
                       return [t.textContent, b.left, b.top, b.right, b.bottom];
                     })};
           })"""
    )
    assert len(charts) >= 12
    assert "pair verdicts (chosen vs rejected)" in [c["title"] for c in charts]
    for found in charts:
        left, top, right, bottom = found["svg"]
        texts = found["texts"]
        for text, *box in texts:
            assert left <= box[0] and box[2] <= right and top <= box[1] and box[3] <= bottom, (found["title"], text)
        clashes = [
            (a[0], b[0])
            for i, a in enumerate(texts)
            for b in texts[i + 1 :]
            if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
        ]
        assert clashes == [], found["title"]
