"""CHAIR on the hand-made COCO world of conftest.py, every number worked out by hand below."""

import json

import pytest

from prefgen.core.errors import PrefgenError
from prefgen.eval.chair import ChairImages, evaluate_captions, read_captions, sample_image_ids
from prefgen.eval.words import ObjectWords


def test_chair_on_captions_by_hand(coco):
    # Caption 1 (image 1, truth {person, dog, dining table}): "two dogs and a dog chase a cat . the man has a bow tie
    #   and a baby ." -> dog, dog, cat, man=person, "bow tie"=tie, baby=person: 6 mentions (both dogs count);
    #   cat and tie are not there: 2 hallucinated; recalled {dog, person}: 2 of 3.
    # Caption 2 (image 2, truth {toilet, cat}): "baby cat" is a cat (not a person); "seat" is dropped because
    #   "toilet" is there (not a chair): cat, toilet: 2 mentions, 0 hallucinated; recalled 2 of 2.
    # Caption 3 (image 3, truth {airplane}): "passenger train" is a train (not a person), people -> person,
    #   "adult bird" is a bird, "teddy bears" -> "teddy bear": 4 mentions, 4 hallucinated; recalled 0 of 1.
    # Caption 4 (LURE's id format, image 4, truth {motorcycle, wine glass}): "wine glasses" -> "wine glass",
    #   "hot dogs" -> "hot dog", "motor bike" is joined but the file's entry is " motor bike" (two spaces after the
    #   comma): wine glass, hot dog: 2 mentions, 1 hallucinated; recalled 1 of 2.
    # Skipped: the blank caption of image 4, and image 99 that no annotation file knows.
    # CHAIR_s = 3 / 4 (captions 1, 3, 4); CHAIR_i = (2 + 0 + 4 + 1) / (6 + 2 + 4 + 2) = 7 / 14; recall = 5 / 8.
    result = evaluate_captions(
        coco / "caps.jsonl", [coco / "instances.json"], [coco / "captions.json"], coco / "synonyms.txt"
    )
    assert (result["chair_s"], result["chair_i"], result["recall"]) == (0.75, 0.5, 0.625)
    assert (result["n_captions"], result["mentions"], result["hallucinated_mentions"]) == (4, 14, 7)
    assert result["skipped"] == {"empty_caption": 1, "not_in_annotations": 1}
    assert result["synonyms"] == str(coco / "synonyms.txt")
    first, second, third, fourth = result["sentences"]
    assert first["mentioned"] == ["dog", "dog", "cat", "person", "tie", "person"]
    assert first["words"] == ["dog", "dog", "cat", "man", "tie", "baby"]
    assert first["hallucinated"] == ["cat", "tie"]
    assert first["ground_truth"] == ["dining table", "dog", "person"]
    assert (second["mentioned"], second["hallucinated"]) == (["cat", "toilet"], [])
    assert third["mentioned"] == third["hallucinated"] == ["train", "person", "bird", "teddy bear"]
    assert (fourth["image_id"], fourth["mentioned"], fourth["hallucinated"]) == (
        4,
        ["wine glass", "hot dog"],
        ["hot dog"],
    )


def test_ground_truth_needs_the_reference_captions(coco):
    # Without captions.json image 1's truth loses "dining table" (only its reference caption names a table):
    # the mentions and hallucinations stay, recall becomes (2 + 2 + 0 + 1) / (2 + 2 + 1 + 2) = 5 / 7.
    result = evaluate_captions(coco / "caps.jsonl", [coco / "instances.json"], [], coco / "synonyms.txt")
    assert result["recall"] == 5 / 7 and result["chair_i"] == 0.5
    assert result["sentences"][0]["ground_truth"] == ["dog", "person"]


def test_image_ids_restrict_the_captions(coco):
    # Only images 1 and 2: captions 1 and 2. CHAIR_s 1 / 2, CHAIR_i 2 / 8, recall (2 + 2) / (3 + 2).
    (coco / "ids.txt").write_text("# two images\n1\n2\n")
    result = evaluate_captions(
        coco / "caps.jsonl",
        [coco / "instances.json"],
        [coco / "captions.json"],
        coco / "synonyms.txt",
        coco / "ids.txt",
    )
    assert (result["chair_s"], result["chair_i"], result["recall"]) == (0.5, 0.25, 0.8)
    assert result["skipped"] == {"empty_caption": 1, "not_in_image_ids": 3, "no_caption": 0}


def test_prefgen_table_is_the_default_and_says_so(coco):
    result = evaluate_captions(coco / "caps.jsonl", [coco / "instances.json"], [coco / "captions.json"])
    assert result["synonyms"] == "prefgen"
    # prefgen's table knows "motor bike": caption 4 now names the motorcycle too (3 mentions, 1 hallucinated)
    assert result["sentences"][3]["mentioned"] == ["wine glass", "hot dog", "motorcycle"]


def test_bad_caption_lines_fail_naming_file_and_line(tmp_path):
    path = tmp_path / "caps.jsonl"
    path.write_text('{"image_id": 1, "caption": "a dog"}\n{"caption": "no id"}\n')
    with pytest.raises(PrefgenError, match=r"^.*caps.jsonl:2: no image_id \(nor a LURE id"):
        read_captions(path)
    path.write_text('{"image_id": 1, "caption": "a dog"}\n\n{"image_id": 2, "caption": \n')
    with pytest.raises(PrefgenError, match=r"caps.jsonl:3: malformed JSON"):
        read_captions(path)
    path.write_text('{"image_id": "one", "caption": "a dog"}\n')
    with pytest.raises(PrefgenError, match=r"caps.jsonl:1: image_id must be an integer, not 'one'"):
        read_captions(path)
    path.write_text('{"image_id": 1, "text": "a dog"}\n')
    with pytest.raises(PrefgenError, match=r"caps.jsonl:1: no caption"):
        read_captions(path)


def test_bad_annotation_files_fail_in_one_line(coco, tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(
        PrefgenError, match=r"bad.json is not a COCO annotation file \(no 'annotations', 'categories'\)"
    ):
        evaluate_captions(coco / "caps.jsonl", [tmp_path / "bad.json"])
    data = json.loads((coco / "instances.json").read_text())
    data["annotations"][0].pop("category_id")
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(PrefgenError, match=r"broken.json: malformed COCO annotations \(KeyError: 'category_id'\)"):
        evaluate_captions(coco / "caps.jsonl", [tmp_path / "broken.json"], synonyms=coco / "synonyms.txt")
    (tmp_path / "few.txt").write_text("person, man\ndog\n")
    with pytest.raises(PrefgenError, match=r"have no entry for the COCO category 'cat'"):
        evaluate_captions(coco / "caps.jsonl", [coco / "instances.json"], synonyms=tmp_path / "few.txt")


def test_every_caption_skipped_is_an_error_not_a_zero(coco, tmp_path):
    (tmp_path / "caps.jsonl").write_text('{"image_id": 99, "caption": "a dog"}\n{"image_id": 1, "caption": ""}\n')
    with pytest.raises(PrefgenError, match="no caption left to score .skipped: 1 empty_caption, 1 not_in_annotations"):
        evaluate_captions(tmp_path / "caps.jsonl", [coco / "instances.json"])


def test_chair_images_describe_and_score(coco):
    # A describer that says the same for every image: "a dog and a cat." Truth 1 {person, dog, dining table},
    # 2 {toilet, cat}, 3 {airplane}, 4 {motorcycle, wine glass} -> hallucinated: cat (1), dog (2), both (3),
    # both (4): CHAIR_s 4 / 4, CHAIR_i 6 / 8; recalled 1 + 1 + 0 + 0 of 3 + 2 + 1 + 2.
    images = ChairImages(
        [coco / "instances.json"], [coco / "captions.json"], coco / "images", synonyms=coco / "synonyms.txt"
    )
    seen = []

    def describe(pictures):
        seen.extend(p.size for p in pictures)
        return ["a dog and a cat."] * len(pictures)

    result = images.evaluate(describe, batch_size=3)
    assert seen == [(8, 8)] * 4
    assert (result["chair_s"], result["chair_i"], result["recall"]) == (1.0, 0.75, 0.25)
    assert [s["image_id"] for s in result["sentences"]] == [1, 2, 3, 4]
    (coco / "images" / "COCO_val2014_000000000003.jpg").unlink()
    (coco / "ids.txt").write_text("3\n4\n77\n")
    fewer = ChairImages([coco / "instances.json"], [], coco / "images", coco / "ids.txt", coco / "synonyms.txt")
    result = fewer.evaluate(describe)
    assert fewer.ids == [4] and result["skipped"] == {"not_in_annotations": 1, "image_missing": 1}


def test_sample_is_deterministic_and_filtered_by_folder(coco):
    instances = [coco / "instances.json"]
    assert sample_image_ids(instances, 2, seed=3) == sample_image_ids(instances, 2, seed=3)
    assert sorted({tuple(sample_image_ids(instances, 2, seed=s)) for s in range(20)}) != [(1, 2)]
    assert sample_image_ids(instances, 4, seed=0) == [1, 2, 3, 4]
    (coco / "images" / "COCO_val2014_000000000002.jpg").unlink()
    assert sample_image_ids(instances, 3, seed=0, images=coco / "images") == [1, 3, 4]
    with pytest.raises(PrefgenError, match="only 3 images to draw 4 from"):
        sample_image_ids(instances, 4, seed=0, images=coco / "images")


def test_synonyms_file_with_a_bad_line(tmp_path):
    (tmp_path / "syn.txt").write_text("person, man\ndog, , puppy\n")
    with pytest.raises(
        PrefgenError, match=r"syn.txt:2: empty entry in 'dog, , puppy' \(entries are separated by ', '\)"
    ):
        ObjectWords.read(tmp_path / "syn.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(PrefgenError, match="holds no category"):
        ObjectWords.read(tmp_path / "empty.txt")
