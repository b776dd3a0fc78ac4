"""Sources take LLaVA-style questions as users have them: ``"<image>\\nWhat is ...?"`` keeps its image and loses the
placeholder (a placeholder left in the text is one image too many for the model's processor), and the build says
how many questions it changed, in its output and in the manifest."""

import json

import build_stages
import pytest
from click.testing import CliRunner
from PIL import Image

from prefgen.cli.main import cli
from prefgen.engine.runner import BuildOptions, run_build
from prefgen.engine.sources.common import PLACEHOLDERS_REMOVED
from prefgen.engine.sources.reader import list_items, load_rows
from prefgen.recipe.catalogue import STAGES
from prefgen.recipe.sources import HFDatasetSource, ImageFolderSource, Limits, ManifestSource
from prefgen.stages.base import Drop
from prefgen.store.folder import Store
from prefgen.store.query import run_query

QUESTIONS = [
    "<image>\nWhat colour is the square?",
    "<image>\nHow many objects are there?",
    "Is there a circle? <image>",
    "<image>\nWhat shape is on the left?",
]


def images(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (12, 10), (i * 40, 50, 200 - i * 30)).save(folder / f"img-{i}.png")


def manifest(tmp_path, questions):
    images(tmp_path / "imgs", len(questions))
    lines = [json.dumps({"image": f"imgs/img-{i}.png", "q": q}) for i, q in enumerate(questions)]
    (tmp_path / "list.jsonl").write_text("\n".join(lines) + "\n")
    return ManifestSource(type="manifest", path="list.jsonl", question_column="q")


def read(source, base):
    return load_rows(source, list_items(source, Limits(), 0, base), base)


def test_a_manifest_question_loses_its_placeholder_and_keeps_its_image(tmp_path):
    rows = read(manifest(tmp_path, QUESTIONS), tmp_path)
    assert [r["question"] for r in rows] == [
        "What colour is the square?",
        "How many objects are there?",
        "Is there a circle?",
        "What shape is on the left?",
    ]
    assert [r[PLACEHOLDERS_REMOVED] for r in rows] == [1, 1, 1, 1]
    assert all(r["image"]["bytes"] for r in rows)


def test_a_question_without_placeholder_is_kept_as_it_is(tmp_path):
    rows = read(manifest(tmp_path, ["  What is it?  "]), tmp_path)
    assert (rows[0]["question"], rows[0][PLACEHOLDERS_REMOVED]) == ("  What is it?  ", 0)


def test_a_question_that_is_only_a_placeholder_is_a_counted_drop(tmp_path):
    (row,) = read(manifest(tmp_path, ["<image>\n"]), tmp_path)
    assert isinstance(row, Drop)
    assert (row.reason, row.detail) == ("missing_question", "'q' holds only a placeholder: '<image>\\n'")


def test_a_dataset_question_loses_its_placeholder(tmp_path):
    import datasets

    images(tmp_path / "imgs", 2)
    data = datasets.Dataset.from_dict(
        {"img": [str(tmp_path / "imgs" / f"img-{i}.png") for i in range(2)], "prompt": ["<image>\nRed?", "Blue?"]}
    ).cast_column("img", datasets.Image())
    data.to_parquet(str(tmp_path / "ds.parquet"))
    source = HFDatasetSource(type="hf_dataset", path="ds.parquet", image_column="img", question_column="prompt")
    rows = read(source, tmp_path)
    assert [(r["question"], r[PLACEHOLDERS_REMOVED]) for r in rows] == [("Red?", 1), ("Blue?", 0)]


def test_an_image_folders_fixed_question_loses_its_placeholder(tmp_path):
    images(tmp_path / "images", 2)
    source = ImageFolderSource(type="image_folder", path="images", question="<image>\nDescribe this image.")
    rows = read(source, tmp_path)
    assert [(r["question"], r[PLACEHOLDERS_REMOVED]) for r in rows] == [("Describe this image.", 1)] * 2


# ---------------------------------------------------------------------------------------------- the build's note

RECIPE = """\
name: toy-llava-questions
seed: 0
source:
  type: manifest
  path: list.jsonl
  question_column: q
stages:
  - type: toy_answer
  - type: toy_pairs
output:
  store: store
"""


@pytest.fixture
def toy_stages(monkeypatch):
    for name, cls in build_stages.TOY_STAGES.items():
        monkeypatch.setitem(STAGES, name, cls)


def test_a_build_counts_the_questions_it_changed(tmp_path, toy_stages):
    manifest(tmp_path, QUESTIONS)
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    result = run_build(tmp_path / "recipe.yaml", BuildOptions(quiet=True))
    assert result.manifest.rows == 4
    assert result.manifest.stats["source_notes"] == {"questions_with_image_placeholder": 4}
    rows = run_query(Store(tmp_path / "store"), 'SELECT * FROM "v1" ORDER BY question').to_pylist()
    assert PLACEHOLDERS_REMOVED not in rows[0]  # bookkeeping, never stored
    assert [r["prompt"][0]["content"] for r in rows] == [
        "How many objects are there?",
        "Is there a circle?",
        "What colour is the square?",
        "What shape is on the left?",
    ]
    assert all(r["image_id"] for r in rows)


def test_a_cached_build_counts_them_again(tmp_path, toy_stages):
    manifest(tmp_path, QUESTIONS)
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    run_build(tmp_path / "recipe.yaml", BuildOptions(quiet=True))
    again = run_build(tmp_path / "recipe.yaml", BuildOptions(quiet=True, fresh=True, version="v2"))
    assert again.cached and again.manifest.stats["source_notes"] == {"questions_with_image_placeholder": 4}


def test_the_build_command_prints_the_note(tmp_path, toy_stages):
    manifest(tmp_path, QUESTIONS[:3] + ["No placeholder here?"])
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "recipe.yaml"), "--quiet"])
    assert result.exit_code == 0, result.output
    note = (
        "note: took the <image> placeholder out of 3 source questions (each row passes its image to the model itself)"
    )
    assert note in result.stderr.splitlines()


def test_a_build_without_placeholders_has_no_note(tmp_path, toy_stages):
    manifest(tmp_path, ["What is it?"])
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    result = run_build(tmp_path / "recipe.yaml", BuildOptions(quiet=True))
    assert "source_notes" not in result.manifest.stats


SEVA = """\
name: llava-style-questions
seed: 0
source: {{type: manifest, path: list.jsonl, question_column: q}}
models:
  vlm: {{path: {vlm}, dtype: float32, device: cpu}}
stages:
  - {{type: answer, output: clean_answer, max_new_tokens: 8}}
  - type: corrupt
    ops: [{{op: diffusion_noise, t: 500, space: normalized}}]
  - {{type: answer_corrupted, max_new_tokens: 8, temperature: 1.0}}
  - type: select_pairs
    chosen: clean_answer
    rejected: corrupted_answer
    method: seva
    drop_yes_no: false
    drop_rejected_in_chosen: false
    drop_duplicate_sentences: false
    max_non_alnum_fraction: 1.0
output:
  store: store
"""


@pytest.mark.slow
def test_llava_style_questions_build_pairs_with_a_llava_model(tmp_path, tiny_vlm_dir):
    # as a new user tried it: four "<image>\n..." questions, every row failed in `answer` and no pair was built
    manifest(tmp_path, QUESTIONS)
    (tmp_path / "recipe.yaml").write_text(SEVA.format(vlm=tiny_vlm_dir("llava")))
    result = run_build(tmp_path / "recipe.yaml", BuildOptions(quiet=True))
    assert "stage_error" not in result.manifest.drops
    assert result.manifest.rows + sum(result.manifest.drops.values()) == 4 and result.manifest.rows > 0
    assert result.notes == [
        "note: took the <image> placeholder out of 4 source questions (each row passes its image to the model itself)"
    ]
    questions = run_query(Store(tmp_path / "store"), "SELECT question FROM pairs").column("question").to_pylist()
    assert questions and not any("<image>" in q for q in questions)
