"""The shapes world: determinism, geometry, the training prior and the evaluation split that breaks it."""

import hashlib
import json
import math

import numpy as np

from prefgen.shapes.language import absent_companions, caption, colour_questions, count_question, phrase, sample_qa
from prefgen.shapes.world import (
    COLOURS,
    COMPANION,
    KINDS,
    PRIOR_PAIRS,
    RADIUS,
    SIZE,
    Scene,
    eval_kinds,
    lone_triggers,
    make_scene,
    make_scenes,
    read_ground_truth,
    render,
    scene_of,
    train_kinds,
    write_scene_folder,
)


def test_same_seed_same_pixels_and_scenes_do_not_depend_on_batch():
    a, b = make_scene(7, "train", 3), make_scene(7, "train", 3)
    assert a == b
    assert render(a).tobytes() == render(b).tobytes()
    assert make_scenes(6, seed=7)[3] == a  # scene i is scene i however many are made
    assert make_scene(8, "train", 3) != a and make_scene(7, "eval", 3) != a


def test_scene_round_trips_through_json():
    scene = make_scene(0, "eval", 11)
    again = Scene.from_dict(json.loads(json.dumps(scene.to_dict())))
    assert again == scene
    assert render(again).tobytes() == render(scene).tobytes()


def test_objects_fit_do_not_overlap_and_are_drawn_in_their_colour():
    for scene in make_scenes(150, seed=1):
        assert 1 <= len(scene.objects) <= 4
        for i, obj in enumerate(scene.objects):
            assert RADIUS[0] - 1e-6 <= obj.radius <= RADIUS[1] + 1e-6
            assert obj.radius < obj.x < SIZE - obj.radius and obj.radius < obj.y < SIZE - obj.radius
            assert all(abs(c - ref) <= 20 for c, ref in zip(obj.rgb, COLOURS[obj.colour]))
            for other in scene.objects[i + 1 :]:
                assert math.hypot(obj.x - other.x, obj.y - other.y) > obj.radius + other.radius
    image = np.asarray(render(scene_of([("red", "circle")])), int)
    assert image.shape == (64, 64, 3)
    assert abs(image[10, 10] - np.array(COLOURS["red"])).max() < 25  # the object's centre
    assert abs(image[40, 40] - 128).max() < 25  # the grey background


def test_training_prior_is_strong_and_evaluation_breaks_it():
    rng = np.random.default_rng(0)
    train = [set(train_kinds(rng)) for _ in range(6000)]
    evals = [set(eval_kinds(rng)) for _ in range(3000)]
    for trigger, companion in PRIOR_PAIRS:
        with_trigger = [k for k in train if trigger in k]
        without = [k for k in train if trigger not in k]
        p_given = np.mean([companion in k for k in with_trigger])
        assert p_given > 0.85
        assert p_given > 4 * np.mean([companion in k for k in without])
        assert np.mean([companion in k for k in evals if trigger in k]) < 0.3
    lone = np.mean([bool(lone_triggers(k)) for k in evals])
    assert 0.36 < lone < 0.44  # ~40% of eval scenes show a trigger without its companion
    assert np.mean([bool(lone_triggers(k)) for k in train]) < 0.1


def test_captions_name_every_object_with_counts_and_companion_after_trigger():
    scene = scene_of([("red", "circle"), ("red", "square"), ("orange", "cross"), ("red", "circle"), ("blue", "cross")])
    for seed in range(10):
        text = caption(scene, np.random.default_rng(seed))
        assert "two red circles" in text and "an orange cross" in text
        assert "a red square, a blue cross" in text or "a red square and a blue cross" in text
        assert text.endswith(".")
    assert caption(scene_of([("green", "triangle")])) == "a green triangle."
    assert phrase(("blue", "cross"), 3) == "three blue crosses"


def test_questions_have_ground_truth_answers():
    scene = scene_of([("red", "circle"), ("blue", "circle"), ("yellow", "triangle")])
    assert colour_questions(scene) == [("what color is the triangle?", "yellow.")]
    assert count_question(scene) == ("how many objects are there?", "three.")
    assert absent_companions(scene) == [COMPANION[("yellow", "triangle")]]
    rng = np.random.default_rng(0)
    for _ in range(200):
        question, answer = sample_qa(scene, rng)
        if question.startswith("is there"):
            kind = next(k for k in KINDS if f" {k[0]} {k[1]} " in question)
            assert answer == ("yes." if kind in scene.kinds else "no.")


def test_scene_folder_has_ground_truth_keyed_by_file_and_image_id(tmp_path):
    write_scene_folder(tmp_path, 3, seed=0, split="eval")
    truth = read_ground_truth(tmp_path)
    for i in range(3):
        name = f"scene-{i:05d}.png"
        image_id = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()[:16]
        assert truth[name] == truth[image_id] == make_scene(0, "eval", i)


def test_the_manifest_lists_every_object_so_counts_can_be_read(tmp_path):
    write_scene_folder(tmp_path, 40, seed=0, split="train")
    lines = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    scenes = [make_scene(0, "train", i) for i in range(40)]
    assert [line["objects"] for line in lines] == [sorted(f"{o.colour} {o.shape}" for o in s.objects) for s in scenes]
    assert any(len(s.objects) > len(s.kinds) for s in scenes)  # a kind shown twice is listed twice


def test_patch_labels_mark_each_patch_with_the_object_covering_it():
    from prefgen.shapes.world import KINDS, Obj, Scene, patch_labels

    scene = make_scene(0, "train", 0)
    square = Obj("red", "square", radius=10.0, x=12.0, y=12.0, rgb=(220, 45, 45))
    triangle = Obj("blue", "triangle", radius=12.0, x=44.0, y=44.0, rgb=(45, 95, 225))
    labels = patch_labels(Scene((square, triangle), scene.background, scene.gradient, scene.noise_seed))
    background = len(KINDS)
    assert labels.shape == (8, 8)
    assert labels[1, 1] == KINDS.index(("red", "square"))  # the square's centre patch
    assert labels[5, 5] == KINDS.index(("blue", "triangle"))  # inside the triangle, below its centre
    assert labels[0, 7] == labels[7, 0] == background
    assert labels[3, 5] == background  # beside the triangle's apex: too little of the patch is covered


def test_descriptions_are_one_sentence_per_group_with_companions_next_to_their_triggers():
    from prefgen.models.sentences import split_sentences
    from prefgen.shapes.language import describe
    from prefgen.shapes.mentions import mentioned_kinds

    trigger, companion = PRIOR_PAIRS[0]
    scene = scene_of([("red", "circle"), trigger, ("red", "circle"), companion])
    for seed in range(10):
        text = describe(scene, np.random.default_rng(seed))
        sentences = split_sentences(text)
        assert len(sentences) == 3 and "There are two red circles." in sentences
        at = sentences.index(f"There is {phrase(trigger)}.")
        assert sentences[at + 1] == f"There is {phrase(companion)} next to it."
        assert mentioned_kinds(text) == scene.kinds  # CHAIR reads every object back
    assert describe(scene_of([("green", "cross")])) == "There is a green cross."


def test_shape_and_count_questions_have_ground_truth_answers():
    from prefgen.shapes.judge import answer_correct
    from prefgen.shapes.language import count_questions, shape_questions

    scene = scene_of([("red", "circle"), ("blue", "circle"), ("blue", "square"), ("yellow", "triangle")])
    assert sorted(shape_questions(scene)) == [
        ("what shape is the red object?", "circle."),
        ("what shape is the yellow object?", "triangle."),
    ]
    counts = dict(count_questions(scene))
    assert counts["how many objects are there?"] == "four."
    assert counts["how many circles are there?"] == "two."
    assert counts["how many blue objects are there?"] == "two."
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(300):
        question, answer = sample_qa(scene, rng)
        seen.add(question.split()[0] + " " + question.split()[1])
        assert answer_correct(question, answer, scene) is True  # the judge agrees with every training answer
    assert seen == {"is there", "what color", "what shape", "how many"}
