from pathlib import Path

import pytest

from prefgen.core.errors import RecipeError
from prefgen.recipe import check_recipe, load_recipe

RECIPES = sorted((Path(__file__).parents[2] / "recipes").glob("**/*.yaml"))

MINIMAL = """\
name: demo
source:
  type: image_folder
  path: imgs
models:
  vlm: {path: model}
stages:
  - type: answer
  - type: corrupt
  - type: answer_corrupted
  - type: select_pairs
    chosen: answer
    rejected: corrupted_answer
    method: seva
output:
  store: out
"""


def write(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def messages(tmp_path, text):
    return [(p.line, p.path, p.message) for p in check_recipe(write(tmp_path, text))]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_shipped_recipes_validate(path):
    assert check_recipe(path) == []


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_shipped_recipes_point_editors_at_the_schema(path):
    schema = Path(__file__).parents[2] / "schemas" / "recipe.schema.json"
    first = path.read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    assert (path.parent / first.split("$schema=", 1)[1]).resolve() == schema


def test_questions_from_the_source_satisfy_answer(tmp_path):
    text = MINIMAL.replace("path: imgs", "path: imgs\n  question_column: q").replace(
        "type: image_folder", "type: manifest"
    )
    text = text.replace("path: imgs", "path: list.jsonl")
    recipe = load_recipe(write(tmp_path, text))
    assert [s.stage_type() for s in recipe.stages] == ["answer", "corrupt", "answer_corrupted", "select_pairs"]
    assert recipe.source.output_columns()[-1] == "question"


def test_reading_a_column_nobody_writes_is_reported_with_its_line(tmp_path):
    assert messages(tmp_path, MINIMAL) == [
        (
            8,
            "stages[0]",
            "stage 'answer' reads column 'question', which neither the source nor an earlier stage writes",
        ),
        (
            10,
            "stages[2]",
            "stage 'answer_corrupted' reads column 'question', which neither the source nor an earlier stage writes",
        ),
        (
            11,
            "stages[3]",
            "stage 'select_pairs' reads column 'question', which neither the source nor an earlier stage writes",
        ),
    ]


def test_a_stage_placed_too_early_gets_a_hint(tmp_path):
    text = MINIMAL.replace("  - type: answer\n", "  - type: answer\n  - type: self_question\n", 1)
    first = messages(tmp_path, text)[0]
    assert first[2].endswith("stages[1] writes it, move that stage earlier")


def test_unknown_stage_type_suggests_the_nearest(tmp_path):
    text = MINIMAL.replace("type: corrupt", "type: corupt")
    found = [m for m in messages(tmp_path, text) if m[1] == "stages[1].type"]
    assert found and found[0][0] == 9
    assert found[0][2].startswith("unknown stage type 'corupt' (did you mean 'corrupt'?)")


def test_unknown_key_suggests_the_nearest(tmp_path):
    text = MINIMAL.replace("  - type: answer\n", "  - type: answer\n    max_new_token: 5\n", 1)
    assert (9, "stages[0].max_new_token", "unknown key 'max_new_token' (did you mean 'max_new_tokens'?)") in messages(
        tmp_path, text
    )


def test_wrong_types_and_ranges_are_located(tmp_path):
    text = MINIMAL.replace("name: demo", "name: demo\nseed: many").replace(
        "  - type: corrupt\n", "  - type: corrupt\n    ops: [{op: diffusion_noise, t: 5000}]\n"
    )
    found = {(m[0], m[1]) for m in messages(tmp_path, text)}
    assert (2, "seed") in found
    assert (11, "stages[1].ops[0].t") in found


def test_all_problems_are_reported_at_once_in_file_order(tmp_path):
    text = MINIMAL.replace("name: demo", "name: demo\nsed: 1").replace("type: corrupt", "type: corupt")
    text = text.replace("store: out", "store: out\n  version: ../escape")
    found = messages(tmp_path, text)
    assert [m[1] for m in found] == [
        "sed",
        "stages[0]",
        "stages[1].type",
        "stages[2]",
        "stages[2]",
        "stages[3]",
        "output.version",
    ]
    assert [m[0] for m in found] == sorted(m[0] for m in found)


def test_a_stage_needing_a_missing_model_is_reported(tmp_path):
    text = MINIMAL.replace("models:\n  vlm: {path: model}\n", "")
    assert any(m[2] == "stage 'answer' needs `models.vlm`" for m in messages(tmp_path, text))


def test_recipe_without_pair_columns_is_reported(tmp_path):
    text = MINIMAL.split("  - type: select_pairs")[0] + "output:\n  store: out\n"
    found = messages(tmp_path, text)
    contract = [m for m in found if m[1] == "stages"]
    assert contract and contract[0][0] == 7
    assert "end the recipe with a `select_pairs` stage" in contract[0][2]


def test_duplicate_keys_and_labels_are_reported(tmp_path):
    text = MINIMAL.replace("name: demo", "name: demo\nname: other")
    text = text.replace("  - type: corrupt\n", "  - type: corrupt\n  - type: corrupt\n")
    found = messages(tmp_path, text)
    assert (2, "name", "key given twice; the later value would silently win") in found
    assert any("label 'corrupt' is also used by stages[1]" in m[2] for m in found)


def test_model_needs_exactly_one_location(tmp_path):
    text = MINIMAL.replace("vlm: {path: model}", "vlm: {path: model, id: a/b}")
    assert (6, "models.vlm", "give exactly one of `id` (Hub) or `path` (local folder)") in messages(tmp_path, text)


def test_hub_dataset_needs_a_pinned_revision(tmp_path):
    text = MINIMAL.replace("type: image_folder\n  path: imgs", "type: hf_dataset\n  id: user/images")
    found = messages(tmp_path, text)
    assert any(m[1] == "source" and "pinned `revision`" in m[2] for m in found)


def test_yaml_syntax_error_has_a_line(tmp_path):
    found = messages(tmp_path, MINIMAL.replace("  type: image_folder", "  type: [image_folder"))
    assert len(found) == 1 and found[0][0] == 4 and found[0][2].startswith("not valid YAML")


def test_non_mapping_and_unreadable_files(tmp_path):
    assert messages(tmp_path, "- just\n- a list\n")[0][2].startswith("a recipe must be a mapping")
    assert check_recipe(tmp_path / "absent.yaml")[0].message.startswith("cannot read recipe")


def test_load_recipe_raises_with_every_problem(tmp_path):
    with pytest.raises(RecipeError) as err:
        load_recipe(write(tmp_path, MINIMAL))
    assert len(err.value.problems) == 3
    assert "(and 2 more; run `prefgen validate" in str(err.value)


def test_fingerprint_ignores_output_but_not_params(tmp_path):
    base = load_recipe(
        write(
            tmp_path,
            MINIMAL.replace("name: demo", "name: demo")
            .replace("type: image_folder", "type: manifest")
            .replace("path: imgs", "path: l.jsonl\n  question_column: q"),
        )
    )
    moved = load_recipe(
        write(
            tmp_path,
            MINIMAL.replace("type: image_folder", "type: manifest")
            .replace("path: imgs", "path: l.jsonl\n  question_column: q")
            .replace("store: out", "store: elsewhere"),
            "b.yaml",
        )
    )
    changed = load_recipe(
        write(
            tmp_path,
            MINIMAL.replace("type: image_folder", "type: manifest")
            .replace("path: imgs", "path: l.jsonl\n  question_column: q")
            .replace("  - type: answer\n", "  - type: answer\n    n: 2\n    temperature: 0.7\n", 1),
            "c.yaml",
        )
    )
    assert base.fingerprint() == moved.fingerprint() != changed.fingerprint()


def test_overrides_set_values_by_path_and_stage_label(tmp_path):
    path = write(tmp_path, MINIMAL)
    source = ["source.type=manifest", "source.path=l.jsonl", "source.question_column=q"]
    recipe = load_recipe(path, [*source, "seed=9", "stages.select_pairs.method=other", "stages.0.max_new_tokens=7"])
    assert recipe.seed == 9 and recipe.stages[-1].method == "other" and recipe.stages[0].max_new_tokens == 7
    with pytest.raises(RecipeError, match=r"--set: cannot set stages.nope.method: .no single stage labelled 'nope'"):
        load_recipe(path, [*source, "stages.nope.method=x"])
    with pytest.raises(RecipeError, match=r"'seed' is not KEY=VALUE"):
        load_recipe(path, [*source, "seed"])
    with pytest.raises(RecipeError, match=r"--set seed=-1: Input should be greater than or equal to 0"):
        load_recipe(path, [*source, "seed=-1"])
