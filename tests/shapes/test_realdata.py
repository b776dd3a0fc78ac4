"""Real-data benchmarks on small literal fixtures: POPE jsonl files and CHAIR against COCO instance annotations."""

import json

import pytest
from PIL import Image

from prefgen.core.errors import PrefgenError
from prefgen.eval.realdata import (
    COCO_SYNONYMS,
    chair_coco,
    coco_mentions,
    evaluate_coco_chair,
    evaluate_pope_file,
    read_coco_objects,
    read_pope,
)

INSTANCES = {
    "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}, {"id": 3, "file_name": "c.jpg"}],
    "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 62, "name": "chair"}],
    "annotations": [
        {"id": 10, "image_id": 1, "category_id": 1},
        {"id": 11, "image_id": 1, "category_id": 18},
        {"id": 12, "image_id": 1, "category_id": 1},
        {"id": 13, "image_id": 2, "category_id": 62},
    ],
}


@pytest.fixture
def coco(tmp_path):
    (tmp_path / "instances.json").write_text(json.dumps(INSTANCES))
    for i, name in enumerate(("a.jpg", "b.jpg")):  # c.jpg is annotated but missing: it is skipped
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / name)
    return tmp_path


def test_synonym_table_covers_the_80_categories_and_prefers_long_names():
    assert len(COCO_SYNONYMS) == 80
    assert coco_mentions("A man rides a bike past two dogs and a hot dog stand.") == {
        "person",
        "bicycle",
        "dog",
        "hot dog",
    }
    assert coco_mentions("a teddy bear on the sofa next to people") == {"teddy bear", "couch", "person"}
    assert coco_mentions("Knives, forks and a cell phone.") == {"knife", "fork", "cell phone"}


def test_chair_against_coco_annotations(coco):
    objects = read_coco_objects(coco / "instances.json")
    assert objects == {"a.jpg": {"person", "dog"}, "b.jpg": {"chair"}, "c.jpg": set()}
    captions = {"a.jpg": "A man with his puppy sitting on a chair.", "b.jpg": "An empty chair."}
    result = chair_coco(captions, objects)
    assert result["chair_s"] == 0.5  # the chair of a.jpg is not there
    assert result["chair_i"] == 0.25
    assert result["recall"] == 1.0
    report, said = evaluate_coco_chair(
        lambda images: [captions["a.jpg"], captions["b.jpg"]][: len(images)], coco / "instances.json", coco
    )
    assert said == captions and report == result


def test_bad_annotations_fail_in_one_line(tmp_path):
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(PrefgenError, match="cannot read COCO annotations"):
        read_coco_objects(tmp_path / "bad.json")


def test_pope_jsonl(coco):
    lines = [
        {"question_id": 1, "image": "a.jpg", "text": "Is there a dog in the image?", "label": "yes"},
        {"question_id": 2, "image": "a.jpg", "text": "Is there a cat in the image?", "label": "no"},
        {"question_id": 3, "image": "b.jpg", "text": "Is there a chair in the image?", "label": "yes"},
        {"question_id": 4, "image": "b.jpg", "text": "Is there a person in the image?", "label": "no"},
    ]
    path = coco / "pope.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert [q["label"] for q in read_pope(path)] == [True, False, True, False]
    seen = []

    def answer(images, questions):
        seen.extend(image.size for image in images)
        return ["Yes." if "dog" in q or "cat" in q else "No." for q in questions]

    metrics, answers = evaluate_pope_file(answer, path, coco)
    assert answers == ["Yes.", "Yes.", "No.", "No."] and seen == [(8, 8)] * 4
    assert metrics["accuracy"] == 0.5 and metrics["precision"] == 0.5 and metrics["recall"] == 0.5
    assert metrics["yes_ratio"] == 0.5
    path.write_text(json.dumps({**lines[0], "label": "maybe"}) + "\n")
    with pytest.raises(PrefgenError, match="pope.jsonl:1"):
        read_pope(path)
