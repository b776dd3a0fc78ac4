"""`prefgen report`: the HTML of a version, of two versions compared and of rounds folders; the dataset card's
summary; and the pages opened in a real browser (Debian's Chromium driven by Selenium through its chromedriver)."""

from __future__ import annotations

import base64
import hashlib
import html as html_module
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from conftest import pair_rows
from PIL import Image

from prefgen.cli.main import cli
from prefgen.core.errors import PrefgenError
from prefgen.report import write_report
from prefgen.stages.corrupt.ops import DiffusionNoise
from prefgen.stages.corrupt.pixels import describe_corruption
from prefgen.store.card import render_card, score_histogram_png
from prefgen.store.folder import Store

EVIL = "<script>window.__pwned = 1</script>"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


# ---------------------------------------------------------------------------------------------------- stores


def gallery_rows(n: int = 6) -> list[dict]:
    """Pairs of three kinds: SENA-like with a corrupted image, CSR with per-sentence steps, and one plain pair whose
    chosen answer holds a script. Rows 0 and 1 share an image."""
    rows = pair_rows("p", n)
    for i, row in enumerate(rows):
        row["images"] = [Image.new("RGB", (40, 30), (30 * i % 256, 120, 200))]
        row["question_source"] = "self_question" if i % 2 else "dataset"
        row["corruption"] = None
        row["csr_chosen_steps"] = row["csr_rejected_steps"] = None
    rows[1]["images"], rows[1]["image_id"] = rows[0]["images"], rows[0]["image_id"]
    rows[0].update(method="sena", corruption=describe_corruption([DiffusionNoise(t=500)], seed=7))
    rows[1].update(method="sena", corruption=describe_corruption([DiffusionNoise(t=500)], seed=8))
    steps = [
        {
            "text": "A blue square.",
            "clip_cosine": 0.31,
            "clip": 31.0,
            "logprob_sum": -2.0,
            "logprob_mean": -0.5,
            "reward": 28.0,
        },
        {
            "text": "It sits on grass.",
            "clip_cosine": 0.12,
            "clip": 12.0,
            "logprob_sum": -3.0,
            "logprob_mean": -0.75,
            "reward": 10.7,
        },
    ]
    rows[2].update(
        method="csr",
        chosen=[{"role": "assistant", "content": "A blue square. It sits on grass."}],
        csr_chosen_steps=steps,
        csr_rejected_steps=steps[1:],
    )
    rows[3].update(
        method="plain",
        chosen=[{"role": "assistant", "content": f"Look: {EVIL} done."}],
        question=f"Is this </script><!-- a question? {EVIL}",
    )
    return rows


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store.create(tmp_path / "pairs")
    with store.draft("v1") as draft:
        draft.write_rejects(
            0,
            [{"row_id": f"x{i}", "stage": "select_pairs", "reason": "yes_no", "detail": ""} for i in range(3)]
            + [{"row_id": "y", "stage": "source", "reason": "undecodable_image", "detail": "truncated"}],
        )
        draft.write_shard(0, gallery_rows())
        draft.publish(
            message="first",
            drops={"yes_no": 3, "undecodable_image": 1},
            stats={"source_items": 10, "stages": {"answer": {"rows_seen": 10, "errors": 0, "seconds": 1.25}}},
            recipe={
                "name": "test-recipe",
                "stages": [{"type": "select_pairs", "chosen": "answer", "rejected": "answer"}],
            },
        )
    with store.draft("v2") as draft:
        draft.write_shard(0, gallery_rows(4)[:2] + pair_rows("n", 3))
        draft.publish(message="second")
    return store


def report(store_or_dirs, tmp_path, name="report.html", **kwargs) -> str:
    targets = store_or_dirs if isinstance(store_or_dirs, list) else [str(store_or_dirs)]
    result = write_report(targets, tmp_path / name, **kwargs)
    return result.path.read_text(encoding="utf-8")


def embedded(html: str, element_id: str):
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.DOTALL)
    return json.loads(found.group(1))


def make_rounds(root: Path, chair: list[float], accuracy: list[float]) -> Path:
    """A rounds folder as `prefgen train --rounds --eval` leaves it, written by hand (no training)."""
    root.mkdir(parents=True)
    (root / "round-0.json").write_text(
        json.dumps(
            {
                "round": 0,
                "model": "base-vlm",
                "eval": {
                    "chair": {"chair_s": chair[0], "chair_i": chair[0] / 2, "recall": 0.6, "captions": 50},
                    "pope": {"random": {"f1": 0.5, "questions": 100}},
                },
            }
        )
    )
    store = Store.create(root / "data")
    for r in range(1, len(chair)):
        with store.draft(f"r{r}") as draft:
            draft.write_shard(0, pair_rows(f"r{r}", 4))
            draft.publish(message=f"round {r}", round=r, drops={"yes_no": r})
        model = root / f"round-{r}" / "model"
        model.mkdir(parents=True)
        parent = "base-vlm" if r == 1 else str(root / f"round-{r - 1}" / "model")
        lineage = {
            "parent_model": parent,
            "round": r,
            "data": {"store": str(root / "data"), "version": f"r{r}", "rows": 4, "model": parent},
            "metrics": {
                "train_loss": 0.69 - 0.01 * r,
                "steps": 2,
                "rewards/accuracies": accuracy[r - 1],
                "rewards/margins": 0.1 * r,
            },
            "eval": {
                "chair": {"chair_s": chair[r], "chair_i": chair[r] / 2, "recall": 0.6 + 0.05 * r, "captions": 50},
                "pope": {"random": {"f1": 0.5 + 0.1 * r, "questions": 100}},
                "pairs": {"pairs": 4, "accuracy": 0.75, "better": 3, "tie": 0, "worse": 1},
            },
        }
        (model / "lineage.json").write_text(json.dumps(lineage))
        (model / "metrics.jsonl").write_text(
            "".join(
                json.dumps({"loss": 0.69, "rewards/accuracies": 0.5 * s, "rewards/margins": 0.01 * s, "step": s})
                + "\n"
                for s in (1, 2)
            )
        )
    return root


# ---------------------------------------------------------------------------------------------------- the version


def test_version_report_holds_the_summary_drops_stages_and_recipe(store, tmp_path):
    html = report(f"{store.root}@v1", tmp_path)
    assert "<title>pairs@v1</title>" in html
    summary = html[html.index('id="summary"') : html.index('id="scores"')]
    for fact in (
        "<dt>pairs</dt><dd>6</dd>",
        "<dt>dropped</dt><dd>4</dd>",
        "<dt>candidate pairs</dt><dd>10</dd>",
        "<dt>message</dt><dd>first</dd>",
        "<dt>source images</dt><dd>10</dd>",
    ):
        assert fact in summary
    drops = html[html.index("<h2>Drops</h2>") : html.index("<h2>Stages</h2>")]
    assert re.search(r"<td>select_pairs</td><td>yes_no</td><td class=\"n\">3</td>", drops)
    assert re.search(r"<td>source</td><td>undecodable_image</td><td class=\"n\">1</td>", drops)
    assert re.search(r"<td>answer</td><td class=\"n\">10</td><td class=\"n\">0</td><td class=\"n\">1.25</td>", html)
    assert "name: test-recipe" in html
    assert html.count('<svg class="chart"') == 3  # scores, margins, margins by method (several methods)


def test_gallery_rows_carry_texts_scores_sentences_and_deduplicated_thumbnails(store, tmp_path):
    html = report(f"{store.root}@v1", tmp_path)
    rows, thumbs = embedded(html, "pairs-data"), embedded(html, "thumbs-data")
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(6)]
    assert rows[4]["q"] == "What is in picture 4?" and rows[4]["m"] == pytest.approx(0.4)
    assert rows[4]["cs"] == pytest.approx(1.4) and rows[4]["rs"] == 1.0 and rows[4]["me"] == "test"
    # 6 rows, 5 distinct images, 2 corrupted ones: 7 thumbnails, every one a JPEG that decodes
    assert len(thumbs) == 7 and rows[0]["t"] == rows[1]["t"] and rows[0]["ct"] != rows[1]["ct"]
    sizes = {Image.open(io.BytesIO(base64.b64decode(t))).size for t in thumbs}
    assert sizes == {(40, 30)}  # small images are not enlarged
    assert rows[0]["cd"] == "diffusion_noise t=500 pixel" and "ct" not in rows[4]
    assert rows[2]["csn"] == [
        ["A blue square.", {"clip": 31.0, "logp": -0.5, "reward": 28.0}],
        ["It sits on grass.", {"clip": 12.0, "logp": -0.75, "reward": 10.7}],
    ]
    assert rows[2]["rsn"] == [["It sits on grass.", {"clip": 12.0, "logp": -0.75, "reward": 10.7}]]


def test_the_corrupted_thumbnail_is_the_corrupt_stages_image_shrunk(tmp_path):
    """The corruption is recreated on the full image (as the `corrupt` stage made it), then shrunk: noising the
    thumbnail instead would show other pixels."""
    from prefgen.report.thumbs import CORRUPTED_QUALITY
    from prefgen.stages.corrupt.pixels import apply_corruption

    rows = gallery_rows()[:1]
    rows[0]["images"] = [Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8))]
    store = Store.create(tmp_path / "s")
    with store.draft("v1") as draft:
        draft.write_shard(0, rows)
        draft.publish()
    html = report(store.root, tmp_path)
    thumbs, row = embedded(html, "thumbs-data"), embedded(html, "pairs-data")[0]
    expected = apply_corruption(rows[0]["images"][0], rows[0]["corruption"])
    expected.thumbnail((128, 128), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    expected.save(buffer, format="JPEG", quality=CORRUPTED_QUALITY, optimize=True)
    assert base64.b64decode(thumbs[row["ct"]]) == buffer.getvalue()
    clean = np.asarray(Image.open(io.BytesIO(base64.b64decode(thumbs[row["t"]]))), dtype=float)
    noisy = np.asarray(Image.open(io.BytesIO(base64.b64decode(thumbs[row["ct"]]))), dtype=float)
    assert clean.shape == noisy.shape == (85, 128, 3) and np.abs(clean - noisy).mean() > 20


def test_scores_of_a_picked_candidate_come_from_its_columns(tmp_path):
    """A shapes-csr-like version: the answers column holds candidates and `<column>_*` their scores."""
    rows = pair_rows("c", 2)
    for row in rows:
        row["answers"] = ["A red dog.", row["chosen"][0]["content"], row["rejected"][0]["content"]]
        row["answers_clip"], row["answers_logp"] = [0.1, 0.9, 0.2], [-1.0, -0.4, -2.5]
        row["answers_clip_sentences"] = [[0.1], [0.9], [0.2]]
    store = Store.create(tmp_path / "s")
    with store.draft("v1") as draft:
        draft.write_shard(0, rows)
        draft.publish(recipe={"stages": [{"type": "select_pairs", "chosen": "answers", "rejected": "answers"}]})
    entry = embedded(report(store.root, tmp_path), "pairs-data")[1]
    assert entry["cx"] == {"clip": 0.9, "logp": -0.4} and entry["rx"] == {"clip": 0.2, "logp": -2.5}
    assert entry["csn"] == [["A blue square number 1.", {"clip": 0.9}]]


def test_no_text_from_the_data_can_become_markup(store, tmp_path):
    html = report(f"{store.root}@v1", tmp_path)
    assert EVIL not in html and "</script><!--" not in html
    data = html[html.index('id="pairs-data">') : html.index('id="thumbs-data"')]
    assert data.count("</script>") == 1  # only the element's own end tag
    assert "\\u003cscript\\u003ewindow.__pwned = 1\\u003c/script\\u003e" in data
    assert embedded(html, "pairs-data")[3]["c"] == f"Look: {EVIL} done."
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1 and "__pwned" not in scripts[0]
    policy = html_module.unescape(re.search(r'script-src (\S+)"', html).group(1))

    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert policy == f"'sha256-{digest}'"  # the page script alone may run


def test_markup_in_method_names_and_messages_is_escaped(tmp_path):
    rows = pair_rows("m", 1)
    rows[0]["method"] = "<b>bold</b>"
    store = Store.create(tmp_path / "s")
    with store.draft("v1") as draft:
        draft.write_shard(0, rows)
        draft.publish(message="<img src=x onerror=alert(1)>")
    html = report(store.root, tmp_path)
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_compare_shows_counts_drops_and_scores_of_both_versions(store, tmp_path):
    html = report(store.root, tmp_path, compare=("v1", "v2"))
    assert "<title>pairs: v1 vs v2</title>" in html
    assert "<tr><td>pairs</td><td>6</td><td>5</td></tr>" in html
    assert '<td>select_pairs</td><td>yes_no</td><td class="n">3</td><td class="n">0</td><td class="n">-3</td>' in html
    assert "2 in both, 4 only in v1, 3 only in v2" in html
    assert html.count('<svg class="chart"') == 3 and "The recipes differ" in html
    assert '<tr><td>sena</td><td class="n">2</td><td class="n">2</td><td class="n">+0</td></tr>' in html
    assert '<tr><td>test</td><td class="n">2</td><td class="n">3</td><td class="n">+1</td></tr>' in html


# ---------------------------------------------------------------------------------------------------- rounds


def test_rounds_report_charts_every_metric_and_the_lineage(tmp_path):
    run = make_rounds(tmp_path / "csr", chair=[0.4, 0.3, 0.2], accuracy=[0.6, 0.7])
    html = report([str(run)], tmp_path)
    for title in (
        "chair.chair_s",
        "chair.chair_i",
        "chair.recall",
        "pope.random.f1",
        "pairs.accuracy",
        "rewards/accuracies",
        "rewards/margins",
        "train_loss",
        "pair verdicts (chosen vs rejected)",
        "rewards/margins per step",
    ):
        assert f'aria-label="{title}"' in html, title
    assert 'aria-label="chair.captions"' not in html  # counts are tabled, not charted
    lineage = re.sub(r"\s+", " ", html[html.index('class="lineage"') : html.index("Hallucination")])
    assert re.findall(r"<b>(.*?)</b>", lineage) == ["base model", "data r1", "model 1", "data r2", "model 2"]
    assert "built by round-1" in lineage and "CHAIR_s 0.2" in lineage and "dropped 2" in lineage
    assert '<td class="n">0.3</td>' in html  # round 1's CHAIR_s in the table of every value


def test_several_runs_are_overlaid(tmp_path):
    one = make_rounds(tmp_path / "csr", chair=[0.4, 0.3, 0.2], accuracy=[0.6, 0.7])
    two = make_rounds(tmp_path / "likelihood", chair=[0.4, 0.45, 0.5], accuracy=[0.5, 0.5])
    html = report([str(one), str(two)], tmp_path)
    chart = re.search(r'<svg[^>]*aria-label="chair.chair_s".*?</svg>', html, re.DOTALL).group(0)
    assert chart.count("<polyline") == 2 and "csr, round 2: 0.2" in chart and "likelihood, round 2: 0.5" in chart


# ---------------------------------------------------------------------------------------------------- the card


def test_card_summarises_the_latest_version_and_keeps_the_configs(store):
    manifests = store.manifests()
    card = render_card("u/pairs", manifests[:1], scores={"margin": [0.1, 0.3]}, figure="images/v1-scores.png")
    header = yaml.safe_load(card.split("---\n")[1])
    assert [c["config_name"] for c in header["configs"]] == ["default", "v1"]
    assert "## v1 at a glance" in card and "**6 pairs** (build)" in card
    assert "**dropped 4** of 10 candidate pairs: yes_no 3, undecodable_image 1" in card
    assert "| answer | 10 | 0 | 1.25 |" in card and "| margin | 2 | 0.2 | 0.2 | 0.1 | 0.3 |" in card
    assert "![Scores of v1: chosen vs rejected, and margins](images/v1-scores.png)" in card
    assert "name: test-recipe" in card
    local = (store.root / "README.md").read_text()  # the store's own card: the manifest's part of the summary
    assert "## v2 at a glance" in local and "**5 pairs** (build, parent v1)" in local and "images/" not in local


def test_push_puts_the_score_histogram_beside_the_card(store, tmp_path):
    from store.test_hub import FakeHub

    from prefgen.store.hub import push

    hub = FakeHub(tmp_path / "hub")
    push(store, "u/pairs", api=hub)
    files = hub.repos["u/pairs"].files_at("v2")
    png = Image.open(io.BytesIO(files["images/v2-scores.png"]))
    assert png.format == "PNG" and png.size == (760, 258)
    readme = files["README.md"].decode()
    assert "](images/v2-scores.png)" in readme and "| chosen_score | 5 |" in readme


def test_histogram_png_draws_both_panels():
    png = Image.open(
        io.BytesIO(
            score_histogram_png(
                {"chosen_score": [1, 2, 2, 3], "rejected_score": [0, 1], "margin": [1, 1, 2]}, title="t"
            )
        )
    )
    colours = {c for _, c in png.convert("RGB").getcolors(100000)}
    assert (46, 139, 87) in colours and (200, 64, 64) in colours and (70, 110, 190) in colours


# ---------------------------------------------------------------------------------------------------- the CLI


def test_cli_writes_the_report_and_says_where(store, tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", f"{store.root}@v1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote the version report of pairs@v1 to {out} (") and out.is_file()


@pytest.mark.parametrize(
    "args, starts",
    [
        (["{tmp}/absent"], "{tmp}/absent does not exist"),
        (["{tmp}"], "{tmp} is neither a prefgen store"),
        (["{store}@v9"], "unknown version 'v9'"),
        (["{store}", "--compare", "v1", "v7"], "unknown version 'v7'"),
        (["{store}@v1", "--compare", "v1", "v2"], "give the store without @VERSION"),
        (["{store}", "{store}"], "give one store at a time"),
    ],
)
def test_bad_input_is_one_line_without_a_traceback(store, tmp_path, args, starts):
    fill = {"tmp": tmp_path, "store": store.root}
    out = tmp_path / "out.html"
    result = CliRunner().invoke(cli, ["report", *(a.format(**fill) for a in args), "-o", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + starts.format(**fill)), result.stderr
    assert "Traceback" not in result.output and not out.exists()


def test_a_rounds_folder_without_finished_rounds_is_refused(tmp_path):
    (tmp_path / "run" / "round-1" / "model").mkdir(parents=True)
    with pytest.raises(PrefgenError, match="is neither a prefgen store .* nor a rounds folder"):
        write_report([str(tmp_path / "run")], tmp_path / "x.html")


# ---------------------------------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium through its own chromedriver; Selenium Manager is kept offline (it would otherwise
    try to download a driver). Skipped only on a developer machine without Chromium; CI installs it (.ci/run)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = (
            f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver; pip install -e .[test])"
        )
        if os.environ.get("CI") or os.environ.get("PREFGEN_REQUIRE_BROWSER"):
            pytest.fail(f"browser tests must run here: {reason}")
        pytest.skip(reason)
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1300,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def open_page(driver, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def visible_ids(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#pairs .pair')].map(e => e.dataset.id)")


def test_gallery_in_chromium_loads_filters_sorts_pages_and_escapes(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    store = Store.create(tmp_path / "big")
    rows = gallery_rows() + pair_rows("q", 60)
    for row in rows[6:]:
        row.update(question_source="dataset", corruption=None, csr_chosen_steps=None, csr_rejected_steps=None)
    with store.draft("v1") as draft:
        draft.write_shard(0, rows)
        draft.publish()
    page = write_report([str(store.root)], tmp_path / "gallery.html").path
    open_page(browser, page)
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")

    assert len(visible_ids(browser)) == 50  # the first page of 66
    assert browser.find_element(By.ID, "count").text == "pairs 1–50 of 66"
    margins = browser.execute_script(
        "return JSON.parse(document.getElementById('pairs-data').textContent).map(r => [r.id, r.m])"
    )
    assert visible_ids(browser)[:3] == [i for i, _ in sorted(margins, key=lambda x: -x[1])][:3]
    images = browser.find_elements(By.CSS_SELECTOR, "img.thumb")
    assert len(images) == 50 and all(
        browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", im) for im in images
    )

    Select(browser.find_element(By.ID, "f-method")).select_by_value("sena")
    assert visible_ids(browser) == ["p1", "p0"]  # margin 0.1 before 0.0
    assert len(browser.find_elements(By.CSS_SELECTOR, "img.thumb")) == 4  # clean + corrupted, each pair
    assert "corrupted: diffusion_noise t=500 pixel" in browser.find_element(By.ID, "pairs").text
    Select(browser.find_element(By.ID, "f-method")).select_by_value("")
    Select(browser.find_element(By.ID, "f-source")).select_by_value("self_question")
    assert sorted(visible_ids(browser)) == ["p1", "p3", "p5"]
    Select(browser.find_element(By.ID, "f-source")).select_by_value("")
    browser.find_element(By.ID, "f-text").send_keys("number 2.")
    assert set(visible_ids(browser)) == {"p2", "q2"}  # the rejected "A red dog number 2." and q2's answers
    browser.execute_script(
        "const e = document.getElementById('f-text'); e.value = ''; e.dispatchEvent(new Event('input'))"
    )
    browser.find_element(By.ID, "f-margin").send_keys("5.5")
    assert sorted(visible_ids(browser)) == ["q55", "q56", "q57", "q58", "q59"]
    browser.execute_script(
        "const e = document.getElementById('f-margin'); e.value = ''; e.dispatchEvent(new Event('input'))"
    )
    Select(browser.find_element(By.ID, "f-sort")).select_by_value("m-asc")
    browser.find_element(By.ID, "next").click()
    assert browser.find_element(By.ID, "count").text == "pairs 51–66 of 66" and len(visible_ids(browser)) == 16

    Select(browser.find_element(By.ID, "f-method")).select_by_value("plain")
    evil = browser.find_element(By.CSS_SELECTOR, ".pair .answer.chosen .text")
    assert evil.text == f"Look: {EVIL} done."  # shown as text ...
    assert browser.execute_script("return window.__pwned") is None  # ... and never run
    assert browser.find_element(By.CSS_SELECTOR, ".pair .question").text.startswith("Is this </script><!--")
    Select(browser.find_element(By.ID, "f-method")).select_by_value("csr")
    sentences = browser.find_elements(By.CSS_SELECTOR, ".answer.chosen .sent")
    assert [s.text for s in sentences] == ["A blue square.", "It sits on grass."]
    assert sentences[0].get_attribute("title") == "clip 31 · logp -0.5 · reward 28"
    assert console_errors(browser) == []
    shot = tmp_path / "gallery.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_rounds_and_compare_pages_in_chromium(browser, store, tmp_path):
    one = make_rounds(tmp_path / "csr", chair=[0.4, 0.3, 0.2], accuracy=[0.6, 0.7])
    two = make_rounds(tmp_path / "likelihood", chair=[0.4, 0.45, 0.5], accuracy=[0.5, 0.5])
    for targets, kwargs, name in (
        ([str(one), str(two)], {}, "rounds"),
        ([str(store.root)], {"compare": ("v1", "v2")}, "compare"),
    ):
        page = write_report(targets, tmp_path / f"{name}.html", **kwargs).path
        open_page(browser, page)
        charts = browser.execute_script(
            "return [...document.querySelectorAll('svg.chart')].map(s => s.getBoundingClientRect().width)"
        )
        assert charts and all(width > 100 for width in charts)
        assert console_errors(browser) == []
        shot = tmp_path / f"{name}.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_the_report_command_stays_torch_free(store, tmp_path):
    """Recreating corrupted images needs numpy and Pillow only: a report never waits for torch to load."""
    import subprocess
    import sys

    code = (
        "import sys; from prefgen.cli.main import main; sys.argv = ['prefgen', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules], file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "report", f"{store.root}@v1", "-o", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "HEAVY []" in out.stderr and (tmp_path / "r.html").is_file(), out.stderr
