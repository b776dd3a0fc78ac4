"""`select_pairs`' guards in a real build on a plain image folder: no ground truth anywhere on disk, each drop
counted with its reason in the manifest and listed in the rejects."""

from pathlib import Path
from typing import ClassVar, Literal

import pytest
from PIL import Image

from prefgen.engine.runner import BuildOptions, run_build
from prefgen.recipe.catalogue import STAGES
from prefgen.stages.base import Stage, StageParams
from prefgen.store.folder import Store
from prefgen.store.query import run_query

# per image file: (chosen, rejected) as a self-rewarding loop might write them
ANSWERS = {
    "kept": ("There is a red circle.", "There is a blue square."),
    "degenerate": ("There a purple circle. a a a a", "There is a purple circle."),
    "counts": ("two.", "three."),
    "plural": ("There is a red circle.", "There are two red circles."),
    "cut-short": ("There is a red circle.", "There is a red circle. There is a blue square next to it."),
    "recount": ("There are two green crosses. There is a red circle.", "There is a green cross. There is a square."),
}

RECIPE = """\
name: guards
seed: 0
source: {type: image_folder, path: images}
stages:
  - type: scripted_answers
  - type: select_pairs
    chosen: good
    rejected: bad
    method: guards
    drop_yes_no: false
    max_word_run: 2
    drop_numbers_only: true
    drop_count_disagreement: true
    max_length_share: 0.9
output: {store: store, message: guards on a plain folder}
"""


class ScriptedAnswersParams(StageParams):
    """The question and the two answers of ``ANSWERS`` for each image, by its file name."""

    type: Literal["scripted_answers"] = "scripted_answers"
    reads: ClassVar = ("image", "image_id")
    writes: ClassVar = ("question", "good", "bad")


class ScriptedAnswers(Stage):
    def process(self, rows):
        return [
            {
                **row,
                "question": "Describe the image.",
                **dict(zip(("good", "bad"), ANSWERS[Path(row["image_path"]).stem])),
            }
            for row in rows
        ]


ScriptedAnswersParams.runtime = ScriptedAnswers


@pytest.fixture(autouse=True)
def scripted_stage(monkeypatch):
    monkeypatch.setitem(STAGES, "scripted_answers", ScriptedAnswersParams)


def test_each_guard_drops_its_pairs_on_a_plain_image_folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i, name in enumerate(ANSWERS):
        Image.new("RGB", (16, 12), (40 * i, 90, 200)).save(images / f"{name}.png")
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [*(f"{name}.png" for name in ANSWERS), "recipe.yaml"]
    )  # images and the recipe: nothing that knows what the images show

    manifest = run_build(tmp_path / "recipe.yaml", BuildOptions(quiet=True)).manifest

    assert manifest.rows == 1
    assert manifest.drops == {"degenerate_chosen": 1, "numbers_only": 2, "count_disagreement": 1, "mostly_length": 1}
    store = Store(tmp_path / "store")
    rejects = run_query(store, "SELECT stage, reason, detail FROM rejects ORDER BY reason, detail").to_pylist()
    assert rejects == [
        {
            "stage": "select_pairs",
            "reason": "count_disagreement",
            "detail": f"{ANSWERS['recount'][0]!r} / {ANSWERS['recount'][1]!r}",
        },
        {
            "stage": "select_pairs",
            "reason": "degenerate_chosen",
            "detail": "chosen repeats 'a' 4 times in a row > 2",
        },
        {
            "stage": "select_pairs",
            "reason": "mostly_length",
            "detail": "1.00 of the difference is length > 0.9",
        },
        {
            "stage": "select_pairs",
            "reason": "numbers_only",
            "detail": "'There is a red circle.' / 'There are two red circles.'",
        },
        {"stage": "select_pairs", "reason": "numbers_only", "detail": "'two.' / 'three.'"},
    ]
    [pair] = run_query(store, f'SELECT chosen, rejected FROM "{manifest.version}"').to_pylist()
    assert (pair["chosen"][0]["content"], pair["rejected"][0]["content"]) == ANSWERS["kept"]
