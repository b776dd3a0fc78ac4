"""A hand-made COCO world for CHAIR and POPE: four images, their instances and reference captions, a synonyms file in
the reference's format, captions to score (JSON lines) and POPE questions with answers.

Ground truth per image (instances ∪ objects of the reference captions, through ``SYNONYMS``):
  1: person, dog (instances; dog annotated twice) ∪ person, dog, dining table ("A man walks his puppy near a
     table.")                                                      -> {person, dog, dining table}
  2: toilet, cat ∪ cat, toilet ("A kitten sits on the toilet seat.": "toilet seat" is a toilet)
                                                                   -> {toilet, cat}
  3: airplane ∪ airplane ("A passenger jet on the runway.": "passenger jet" is a jet, not a person)
                                                                   -> {airplane}
  4: motorcycle, wine glass (no reference caption)                 -> {motorcycle, wine glass}
"""

import json

import pytest
from PIL import Image

# The reference's format, with its quirk: "motorcycle,  motor bike" (two spaces) gives the entry " motor bike",
# which can never match.
SYNONYMS = """person, man, woman, people, baby, passenger, child
dog, puppy
cat, kitten
bird
toilet
chair, seat, stool
tie, necktie
airplane, jet, plane
train
wine glass
hot dog
teddy bear
motorcycle,  motor bike
dining table, table
"""
CATEGORIES = ["person", "dog", "cat", "toilet", "airplane", "motorcycle", "wine glass", "bird", "chair"]
INSTANCES = {
    "images": [{"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg"} for i in (1, 2, 3, 4)],
    "categories": [{"id": 10 + k, "name": name} for k, name in enumerate(CATEGORIES)],
    "annotations": [
        {"id": 100 + k, "image_id": image, "category_id": 10 + CATEGORIES.index(name)}
        for k, (image, name) in enumerate(
            [
                (1, "person"),
                (1, "dog"),
                (1, "dog"),
                (2, "toilet"),
                (2, "cat"),
                (3, "airplane"),
                (4, "motorcycle"),
                (4, "wine glass"),
            ]
        )
    ],
}
REFERENCE_CAPTIONS = {
    "images": INSTANCES["images"],
    "annotations": [
        {"id": 1, "image_id": 1, "caption": "A man walks his puppy near a table."},
        {"id": 2, "image_id": 2, "caption": "A kitten sits on the toilet seat."},
        {"id": 3, "image_id": 3, "caption": "A passenger jet on the runway."},
    ],
}
CAPTIONS = [
    {"image_id": 1, "caption": "Two dogs and a Dog chase a cat. The man has a bow tie and a baby."},
    {"image_id": 2, "caption": "A baby cat near the seat of a toilet."},
    {"image_id": 3, "caption": "A passenger train and people, an adult bird and teddy bears."},
    {"id": "COCO_val2014_000000000004.jpg", "answer": "Wine glasses, hot dogs and a motor bike."},  # LURE's format
    {"image_id": 4, "caption": "  "},
    {"image_id": 99, "caption": "A dog."},
]


@pytest.fixture
def coco(tmp_path):
    """Folder with instances.json, captions.json, synonyms.txt, caps.jsonl and the four images (8x8 pixels)."""
    (tmp_path / "instances.json").write_text(json.dumps(INSTANCES))
    (tmp_path / "captions.json").write_text(json.dumps(REFERENCE_CAPTIONS))
    (tmp_path / "synonyms.txt").write_text(SYNONYMS)
    (tmp_path / "caps.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CAPTIONS))
    images = tmp_path / "images"
    images.mkdir()
    for image in INSTANCES["images"]:
        Image.new("RGB", (8, 8), (30 * image["id"], 0, 0)).save(images / image["file_name"])
    return tmp_path


POPE_RANDOM = [  # question id, label, answer ("-" = no answer): expected parse in the comment
    (1, "yes", "Yes."),  # yes: TP
    (2, "no", "No, there is not."),  # "No" -> no: TN
    (3, "no", "There is no dog."),  # "no" -> no: TN
    (4, "yes", "I cannot tell."),  # no "no"/"not" word -> yes: TP
    (5, "no", ""),  # empty -> yes: FP
    (6, "yes", "not sure. Yes"),  # first sentence "not sure" -> no: FN
    (7, "maybe", "Yes"),  # unknown label: counted, not scored
    (8, "yes", None),  # no answer: missing
]
POPE_POPULAR = [
    (101, "yes", "Yes"),  # TP
    (102, "no", "NO"),  # the rule is case-sensitive: "NO" -> yes: FP
    (103, "yes", "No."),  # FN
]


def write_pope(folder, name, rows):
    path = folder / f"{name}.jsonl"
    image = "COCO_val2014_000000000001.jpg"
    lines = [
        {"question_id": q, "image": image, "text": f"Is there a dog {q}?", "label": label} for q, label, _ in rows
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture
def pope_files(tmp_path):
    """(random questions, popular questions, answers to both): ``POPE_*`` plus an answer to an unknown id (42)
    and a second answer to question 1 (the first one counts)."""
    random_q = write_pope(tmp_path, "coco_pope_random", POPE_RANDOM)
    popular_q = write_pope(tmp_path, "coco_pope_popular", POPE_POPULAR)
    answers = [{"question_id": q, "text": a} for q, _, a in POPE_RANDOM + POPE_POPULAR if a is not None]
    answers += [{"question_id": 42, "text": "Yes"}, {"question_id": 1, "text": "No"}]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in answers))
    return random_q, popular_q, path
