"""The build runner, with cheap stages: publishing, rejects, caching, determinism, errors, resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import build_stages
import pytest
from PIL import Image

import prefgen.engine.runner as runner_module
from prefgen.core.errors import PrefgenError
from prefgen.engine.runner import BuildOptions, run_build
from prefgen.recipe.catalogue import STAGES
from prefgen.store.folder import Store
from prefgen.store.query import run_query

TESTS = Path(__file__).parents[1]  # tests/, where build_stages.py is

RECIPE = """\
name: toy
seed: 7
source:
  type: image_folder
  path: images
stages:
  - type: toy_question
    two: {two}
  - type: toy_answer
    suffix: "{suffix}"
    sleep: {sleep}
    fail_on: {fail_on}
  - type: toy_pairs
    min_margin: {min_margin}
output:
  store: store
  message: toy build
limits:
  max_error_rate: {max_error_rate}
"""


@pytest.fixture(autouse=True)
def toy_stages(monkeypatch):
    for name, cls in build_stages.TOY_STAGES.items():
        monkeypatch.setitem(STAGES, name, cls)


def make_images(folder: Path, n: int, bad: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (12, 10), (i * 9 % 256, 50, 200 - i)).save(folder / f"img-{i:03d}.png")
    if bad:
        (folder / "empty.png").write_bytes(b"")
        (folder / "text.jpg").write_text("not a picture")


def write_recipe(folder: Path, name="recipe.yaml", **fields) -> Path:
    values = dict(two="false", suffix="!", sleep=0, fail_on="null", min_margin=0.0, max_error_rate=0.05) | fields
    path = folder / name
    path.write_text(RECIPE.format(**values))
    return path


def quiet(**kw) -> BuildOptions:
    return BuildOptions(quiet=True, **kw)


def published_rows(store_root: Path, version: str | None = None) -> list[dict]:
    store = Store(store_root)
    table = run_query(store, f'SELECT * EXCLUDE (created_at) FROM "{version or store.latest()}" ORDER BY id')
    return table.to_pylist()


def test_build_publishes_pairs_with_drops_and_rejects(tmp_path):
    make_images(tmp_path / "images", 6, bad=True)
    result = run_build(write_recipe(tmp_path), quiet())
    manifest = result.manifest
    assert (manifest.version, manifest.rows, manifest.origin, manifest.message) == ("v1", 6, "build", "toy build")
    assert manifest.drops == {"empty_file": 1, "not_an_image": 1}
    assert manifest.seed == 7 and manifest.recipe["name"] == "toy"
    assert set(manifest.fingerprints) == {"toy_question", "toy_answer", "toy_pairs"}
    store = Store(tmp_path / "store")
    rejects = run_query(store, "SELECT stage, reason FROM rejects ORDER BY reason").to_pylist()
    assert rejects == [{"stage": "source", "reason": "empty_file"}, {"stage": "source", "reason": "not_an_image"}]
    row = published_rows(tmp_path / "store")[0]
    assert row["chosen"][0]["content"] == row["question"].upper() + "!"
    assert row["recipe_fingerprint"] == manifest.recipe_fingerprint and row["method"] == "toy"


def test_published_rows_load_in_datasets_with_images(tmp_path):
    import datasets

    make_images(tmp_path / "images", 3)
    run_build(write_recipe(tmp_path), quiet())
    ds = datasets.load_dataset(str(tmp_path / "store"), split="train")
    assert ds.num_rows == 3 and ds.features["images"] == datasets.List(datasets.Image())
    assert ds[0]["images"][0].size == (12, 10)


@pytest.mark.parametrize("shard_size, batch_size", [(1, 1), (4, 3), (64, 64)])
def test_same_rows_whatever_the_batch_and_shard_sizes(tmp_path, shard_size, batch_size):
    make_images(tmp_path / "images", 9)
    recipe = write_recipe(tmp_path, two="true")
    run_build(recipe, quiet(out=tmp_path / "reference", shard_size=5, batch_size=2))
    run_build(recipe, quiet(out=tmp_path / "other", shard_size=shard_size, batch_size=batch_size))
    reference, other = published_rows(tmp_path / "reference"), published_rows(tmp_path / "other")
    assert len(reference) == 18 and reference == other


def test_a_second_build_recomputes_nothing(tmp_path):
    make_images(tmp_path / "images", 5)
    recipe = write_recipe(tmp_path)
    first = run_build(recipe, quiet(shard_size=2))
    second = run_build(recipe, quiet(shard_size=2, fresh=True))  # a new version anyway, all from the cache
    assert sum(first.computed.values()) == 3 * 4  # 3 shards x (source + 3 stages)
    assert sum(second.computed.values()) == 0 and sum(second.cached.values()) == 12
    assert published_rows(tmp_path / "store", "v1") == published_rows(tmp_path / "store", "v2")


def test_rebuilding_an_unchanged_recipe_publishes_nothing_new(tmp_path):
    make_images(tmp_path / "images", 3)
    recipe = write_recipe(tmp_path)
    run_build(recipe, quiet())
    again = run_build(recipe, quiet())
    assert again.up_to_date and again.manifest.version == "v1" and Store(tmp_path / "store").versions() == ["v1"]
    Image.new("RGB", (12, 10), (1, 2, 3)).save(tmp_path / "images" / "new.png")
    changed = run_build(recipe, quiet())
    assert not changed.up_to_date and changed.manifest.version == "v2" and changed.manifest.rows == 4


def test_changing_a_later_stage_recomputes_only_from_it(tmp_path):
    make_images(tmp_path / "images", 4)
    run_build(write_recipe(tmp_path), quiet(shard_size=2))
    changed = run_build(write_recipe(tmp_path, suffix="?"), quiet(shard_size=2))
    assert changed.cached == {"source": 2, "toy_question": 2}
    assert changed.computed == {"toy_answer": 2, "toy_pairs": 2}
    assert published_rows(tmp_path / "store")[0]["chosen"][0]["content"].endswith("?")


def test_code_hash_follows_the_module_source(tmp_path, monkeypatch):
    import importlib

    from prefgen.engine.fingerprint import code_hash

    module = tmp_path / "edited_stage.py"
    source = (TESTS / "build_stages.py").read_text()
    module.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    first = code_hash(importlib.import_module("edited_stage").ToyPairsParams)
    module.write_text(source.replace('"method": "toy"', '"method": "toy2"'))
    sys.modules.pop("edited_stage")
    importlib.invalidate_caches()
    assert code_hash(importlib.import_module("edited_stage").ToyPairsParams) != first


def test_a_failing_row_is_rejected_and_the_build_goes_on(tmp_path):
    make_images(tmp_path / "images", 30)
    ids = sorted(r.name for r in (tmp_path / "images").iterdir())
    result = run_build(write_recipe(tmp_path, fail_on="x"), quiet(batch_size=8))  # nothing fails
    victim = published_rows(tmp_path / "store")[0]["image_id"]
    result = run_build(write_recipe(tmp_path, fail_on=victim[:10]), quiet(batch_size=8))
    assert result.manifest.rows == 29 and result.manifest.drops == {"stage_error": 1}
    reject = run_query(Store(tmp_path / "store"), "SELECT * FROM rejects WHERE version = 'v2'").to_pylist()[0]
    assert reject["stage"] == "toy_answer" and reject["detail"] == f"ValueError: cannot answer {victim}"
    assert len(ids) == 30


def test_too_many_errors_stop_the_build_with_a_clear_message(tmp_path):
    make_images(tmp_path / "images", 24)
    recipe = write_recipe(tmp_path, max_error_rate=0.1)
    recipe.write_text(recipe.read_text().replace("    fail_on: null\n", "    fail_all: true\n"))
    with pytest.raises(
        PrefgenError,
        match=r"stage 'toy_answer' failed on 24 of 24 rows \(more than "
        r"limits.max_error_rate = 0.1\).*rerun the same command",
    ):
        run_build(recipe, quiet(batch_size=8))
    assert Store(tmp_path / "store").manifests() == []


def test_a_stopped_build_keeps_finished_shards_and_continues(tmp_path):
    make_images(tmp_path / "images", 40)
    failing = write_recipe(tmp_path, sleep=0, max_error_rate=0.05)
    recipe_text = failing.read_text().replace("    fail_on: null\n", "    fail_all: ${FAIL}\n")
    failing.write_text(recipe_text.replace("${FAIL}", "false"))
    ok = run_build(failing, quiet(out=tmp_path / "reference", shard_size=10))
    # the same recipe, but the answer stage fails from the third shard on
    import prefgen.engine.runner as runner

    calls = {"n": 0}
    original = build_stages.ToyAnswer.process

    def flaky(self, rows):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("GPU fell off")
        return original(self, rows)

    build_stages.ToyAnswer.process = flaky
    try:
        with pytest.raises(PrefgenError, match="failed on .* rows"):
            run_build(failing, quiet(shard_size=10, batch_size=10))
    finally:
        build_stages.ToyAnswer.process = original
    draft = next((tmp_path / "store" / ".prefgen" / "drafts").iterdir())
    assert sorted(p.name for p in draft.glob("shard-*.parquet")) == ["shard-00000.parquet", "shard-00001.parquet"]
    resumed = run_build(failing, quiet(shard_size=10, batch_size=10))
    assert resumed.cached["toy_answer"] == 0 and resumed.computed["toy_answer"] == 2
    assert published_rows(tmp_path / "store") == published_rows(tmp_path / "reference")
    assert ok.manifest.rows == resumed.manifest.rows == 40
    assert runner is not None


def test_preview_runs_n_images_and_publishes_nothing(tmp_path):
    make_images(tmp_path / "images", 10)
    result = run_build(write_recipe(tmp_path), quiet(preview=3))
    assert result.manifest is None and len(result.rows) == 3
    assert not (tmp_path / "store").exists()


def test_limit_and_out_override_the_recipe(tmp_path):
    make_images(tmp_path / "images", 10)
    result = run_build(write_recipe(tmp_path), quiet(limit=4, out=tmp_path / "elsewhere", version="first"))
    assert result.manifest.version == "first" and result.manifest.rows == 4
    assert Store(tmp_path / "elsewhere").versions() == ["first"]


def test_a_stage_without_code_is_refused_before_anything_runs(tmp_path, monkeypatch):
    make_images(tmp_path / "images", 2)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        write_recipe(tmp_path)
        .read_text()
        .replace(
            "  - type: toy_pairs\n    min_margin: 0.0\n",
            "  - type: select_pairs\n    chosen: good\n    rejected: bad\n    method: m\n    max_words: 3\n"
            "  - type: caption\n",
        )
        .replace("stages:", "models:\n  vlm: {path: m}\nstages:")
    )
    monkeypatch.setattr(STAGES["caption"], "runtime", None)
    with pytest.raises(PrefgenError, match="caption cannot run in this prefgen yet"):
        run_build(recipe, quiet())
    assert not (tmp_path / "store").exists()


KILLER = """
import sys
sys.path.insert(0, {tests!r})
import build_stages
build_stages.register()
from prefgen.cli.main import main
sys.argv = ["prefgen", "build", {recipe!r}, "--quiet", "--shard-size", "3", "--batch-size", "1"]
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("when", ["early", "late"])
def test_kill_9_then_resume_equals_an_uninterrupted_build(tmp_path, when):
    make_images(tmp_path / "images", 12)
    recipe = write_recipe(tmp_path, sleep=0.03, two="true")
    run_build(recipe, quiet(out=tmp_path / "reference", shard_size=5))
    script = KILLER.format(tests=str(TESTS), recipe=str(recipe))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    drafts = tmp_path / "store" / ".prefgen" / "drafts"
    wanted = 1 if when == "early" else 3
    deadline = time.time() + 60
    while time.time() < deadline and len(list(drafts.glob("*/shard-*.parquet"))) < wanted:
        time.sleep(0.01)
    time.sleep(0.05 if when == "early" else 0.0)  # land inside a stage, between cache writes
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert Store(tmp_path / "store").versions() == []
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert "published v1" in finished.stdout
    assert published_rows(tmp_path / "store") == published_rows(tmp_path / "reference")


def test_cli_build_cache_ls_and_prune(tmp_path):
    from click.testing import CliRunner

    from prefgen.cli.main import cli

    make_images(tmp_path / "images", 3)
    recipe = write_recipe(tmp_path)
    built = CliRunner().invoke(cli, ["build", str(recipe), "--quiet"])
    assert built.exit_code == 0, built.output
    assert built.output.startswith(f"published v1 in {tmp_path / 'store'}: 3 pairs; dropped: none")
    listing = CliRunner().invoke(cli, ["cache", "ls", str(tmp_path / "store")])
    assert [line.split()[:3] for line in listing.output.splitlines()[1:]] == [
        ["source", "1", "3"],
        ["toy_answer", "1", "3"],
        ["toy_pairs", "1", "3"],
        ["toy_question", "1", "3"],
    ]
    run_build(write_recipe(tmp_path, suffix="?"), quiet())
    pruned = CliRunner().invoke(cli, ["cache", "prune", str(tmp_path / "store")])
    assert pruned.output.startswith("removed 2 entries")
    everything = CliRunner().invoke(cli, ["cache", "prune", str(tmp_path / "store"), "--all"])
    assert everything.output.startswith("removed 4 entries")


# ---------------------------------------------------------------------------------------------------- progress


class RecordingReporter(runner_module.Reporter):
    """The runner's reporter, kept for the test, checking after every update that no bar shows more than its total."""

    made: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingReporter.made.append(self)

    def hand(self, label, rows):
        super().hand(label, rows)
        self._check(label)

    def advance(self, label, rows, out, dropped):
        super().advance(label, rows, out, dropped)
        self._check(label)

    def _check(self, label):
        count = self.counts[label]
        assert 0 <= count.done <= count.handed <= count.total, (label, count)


@pytest.fixture
def reporters(monkeypatch):
    RecordingReporter.made = []
    monkeypatch.setattr(runner_module, "Reporter", RecordingReporter)
    return RecordingReporter.made


def final_counts(reporter) -> dict:
    return {label: (c.done, c.total, c.out, c.dropped) for label, c in reporter.counts.items()}


def test_progress_counts_rows_in_against_rows_expected_with_fan_out_and_drops(tmp_path, reporters):
    make_images(tmp_path / "images", 7, bad=True)  # 9 files: 7 images, 2 dropped by the source
    recipe = write_recipe(tmp_path, two="true", min_margin=1.0)
    log = tmp_path / "build.jsonl"
    result = run_build(recipe, quiet(shard_size=4, batch_size=3, log_json=log))
    low = result.manifest.drops["low_margin"]
    assert 0 < low < 14 and result.manifest.rows == 14 - low
    first = final_counts(reporters[0])
    assert first == {
        "source": (9, 9, 7, 2),
        "toy_question": (7, 7, 14, 0),
        "toy_answer": (14, 14, 14, 0),
        "toy_pairs": (14, 14, 14 - low, low),
    }
    events = [json.loads(line) for line in log.read_text().splitlines()]
    question = [e for e in events if e["event"] == "stage_done" and e["stage"] == "toy_question"]
    assert {"stage", "shard", "rows", "drops", "seconds", "rows_in"} <= set(question[0])
    assert sum(e["rows_in"] for e in question) == 7 and sum(e["rows"] for e in question) == 14
    # the same numbers when every shard comes from the cache
    run_build(recipe, quiet(shard_size=4, batch_size=3, fresh=True))
    assert final_counts(reporters[1]) == first


def test_progress_of_a_continued_build_counts_only_the_shards_left(tmp_path, reporters):
    make_images(tmp_path / "images", 15)
    recipe = write_recipe(tmp_path, two="true", max_error_rate=0.05)
    original = build_stages.ToyAnswer.process
    calls = {"n": 0}

    def fails_after_the_first_shard(self, rows):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("out of memory")
        return original(self, rows)

    build_stages.ToyAnswer.process = fails_after_the_first_shard
    try:
        with pytest.raises(PrefgenError, match="failed on"):
            run_build(recipe, quiet(shard_size=5, batch_size=10))
    finally:
        build_stages.ToyAnswer.process = original
    continued = run_build(recipe, quiet(shard_size=5, batch_size=10))
    assert continued.manifest.rows == 30
    assert final_counts(reporters[1]) == {
        "source": (10, 10, 10, 0),
        "toy_question": (10, 10, 20, 0),
        "toy_answer": (20, 20, 20, 0),
        "toy_pairs": (20, 20, 20, 0),
    }


# ---------------------------------------------------------------------------------------------------- plan


@pytest.mark.parametrize("extensions", ["[png]", "[.png]", "[PNG]"])
def test_plan_counts_the_images_the_build_reads(tmp_path, extensions):
    from click.testing import CliRunner

    from prefgen.cli.main import cli

    make_images(tmp_path / "images", 2)
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / ".hidden.png")  # an image, but a dot-file: skipped
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    recipe = write_recipe(tmp_path)
    recipe.write_text(recipe.read_text().replace("  path: images\n", f"  path: images\n  extensions: {extensions}\n"))
    plan = CliRunner().invoke(cli, ["build", str(recipe), "--plan"])
    assert plan.exit_code == 0, plan.output
    assert f"image folder {tmp_path / 'images'}: 2 image file(s)" in plan.output
    manifest = run_build(recipe, quiet()).manifest
    assert manifest.stats["source_items"] == 2 and manifest.rows == 2 and manifest.drops == {}


def test_plan_counts_the_manifest_lines_the_build_reads(tmp_path):
    from prefgen.engine.plan import make_plan

    make_images(tmp_path / "images", 2)
    lines = ['{"image": "images/img-000.png"}', "", "{not json", '{"image": "images/img-001.png"}']
    (tmp_path / "list.jsonl").write_text("\n".join(lines) + "\n")
    recipe = write_recipe(tmp_path)
    recipe.write_text(
        recipe.read_text().replace("  type: image_folder\n  path: images\n", "  type: manifest\n  path: list.jsonl\n")
    )
    assert f"manifest {tmp_path / 'list.jsonl'}: 3 row(s)" in make_plan(recipe).render()
    manifest = run_build(recipe, quiet()).manifest
    assert manifest.stats["source_items"] == 3 and manifest.rows == 2 and manifest.drops == {"bad_manifest_line": 1}
