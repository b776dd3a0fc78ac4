"""The build's progress bars: each counts the rows that went into its stage against the rows expected to, never
shows more done than its total, and ends with done equal to total; rows out and drops are shown apart."""

import io

import pytest

from prefgen.engine.progress import SOURCE, Reporter


def shard(reporter: Reporter, images: int, fan_out: int, drop: int = 0) -> None:
    """One shard as the runner reports it: the source reads ``images``, the stage turns each into ``fan_out``
    rows and drops ``drop`` images."""
    reporter.hand(SOURCE, images)
    reporter.advance(SOURCE, images, images, 0)
    reporter.hand("ask", images)
    reporter.advance("ask", images, (images - drop) * fan_out, drop)


def test_a_stage_total_is_estimated_from_the_shards_so_far_and_exact_at_the_end():
    reporter = Reporter(quiet=True)
    reporter.stages(["ask", "answer"], 10)
    assert reporter.counts["ask"].total == 10  # one row per image until a shard says otherwise
    shard(reporter, 4, 2)
    reporter.hand("answer", 8)
    assert (reporter.counts["answer"].handed, reporter.counts["answer"].total) == (8, 20)  # 2 per image, 6 to go
    reporter.advance("answer", 8, 8, 0)
    shard(reporter, 4, 2)
    reporter.hand("answer", 8)
    reporter.advance("answer", 8, 8, 0)
    assert reporter.counts["answer"].total == 20
    shard(reporter, 2, 1, drop=1)  # the last shard fans out less than the estimate assumed
    reporter.hand("answer", 1)
    reporter.advance("answer", 1, 1, 0)
    ask, answer = reporter.counts["ask"], reporter.counts["answer"]
    assert (ask.done, ask.total, ask.out, ask.dropped) == (10, 10, 17, 1)
    assert (answer.done, answer.total, answer.out, answer.dropped) == (17, 17, 17, 0)
    assert reporter.counts[SOURCE].total == 10


def test_a_stage_that_gets_no_rows_ends_at_zero_of_zero():
    reporter = Reporter(quiet=True)
    reporter.stages(["ask", "answer"], 3)
    shard(reporter, 3, 1, drop=3)
    reporter.hand("answer", 0)
    answer = reporter.counts["answer"]
    assert (answer.done, answer.total, answer.out, answer.dropped) == (0, 0, 0, 0)


def test_the_bars_show_rows_in_of_total_and_rows_out_and_drops_apart(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr("sys.stderr", screen)
    monkeypatch.setenv("COLUMNS", "160")
    with Reporter() as reporter:
        reporter.stages(["ask"], 64)
        shard(reporter, 64, 2, drop=6)
    text = screen.getvalue()
    assert "64/64" in text and "→ 116 out, 6 dropped" in text
    assert "91/64" not in text


class Clock:
    """``time.perf_counter`` as a test sets it."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_bar_counts_its_rate_from_its_own_stages_time(monkeypatch):
    """A VLM stage busy 10 s on 20 rows shows 2 r/s; the quick stage after it, 0.1 s on the same rows, 200 r/s (not
    the 2 r/s a rate counted from the start of the build would show)."""
    clock = Clock()
    monkeypatch.setattr("prefgen.engine.progress.time.perf_counter", clock)
    screen = io.StringIO()
    monkeypatch.setattr("sys.stderr", screen)
    monkeypatch.setenv("COLUMNS", "160")
    with Reporter() as reporter:
        reporter.stages(["answer", "select"], 20)
        reporter.hand(SOURCE, 20)
        reporter.advance(SOURCE, 20, 20, 0)
        reporter.hand("answer", 20)
        for _ in range(2):  # two batches of 5 s
            clock.now += 5.0
            reporter.advance("answer", 10, 10, 0)
        reporter.hand("select", 20)
        clock.now += 0.1
        reporter.advance("select", 20, 18, 2)
        reporter.hand("answer", 0)  # a shard served from the cache takes no time of the stage's
        reporter.advance("answer", 0, 0, 0, seconds=0.0)
        assert reporter.counts["answer"].seconds == 10.0
        assert reporter.counts["select"].seconds == pytest.approx(0.1)
    lines = {line.split()[0]: line for line in screen.getvalue().splitlines() if line.strip()}
    assert "2.0 r/s" in lines["answer"] and "200.0 r/s" in lines["select"]


def test_workers_report_their_seconds():
    reporter = Reporter(quiet=True)
    reporter.stages(["answer"], 8)
    reporter.hand("answer", 8)
    reporter.advance("answer", 8, 8, 0, seconds=4.0)
    assert reporter.counts["answer"].seconds == 4.0


def test_messages_are_not_wrapped_when_the_console_is_not_a_terminal():
    screen = io.StringIO()
    text = "v1 was built from this recipe and these images; nothing to do (--fresh builds a new version anyway)"
    with Reporter(console=screen) as reporter:
        reporter.message(text + " [not markup]")
    assert screen.getvalue().splitlines()[0] == text + " [not markup]"  # one line, however wide, as it was written
