"""Issue 28 (smaller items): a `--set` typo is blamed on the command line, not on the nearest recipe line."""

from pathlib import Path

from prefgen.recipe.check import _check

ROOT = Path(__file__).resolve().parents[2]


def test_a_misspelt_set_key_names_the_set_option():
    recipe, problems = _check(ROOT / "recipes" / "quickstart.yaml", ("stages.select_pairs.chosen_scor=x",))
    assert recipe is None
    assert [(p.path, p.line, p.message) for p in problems] == [
        ("--set stages.select_pairs.chosen_scor=x", None, "unknown key 'chosen_scor' (did you mean 'chosen_score'?)")
    ]


def test_a_bad_set_value_names_the_set_option():
    problems = _check(ROOT / "recipes" / "quickstart.yaml", ("seed=-1",))[1]
    assert [str(p) for p in problems] == ["--set seed=-1: Input should be greater than or equal to 0"]


def test_a_problem_in_the_recipe_itself_keeps_its_line(tmp_path):
    text = (ROOT / "recipes" / "quickstart.yaml").read_text().replace("seed: 0", "seed: -1")
    (tmp_path / "r.yaml").write_text(text.replace("../", f"{ROOT}/"))
    problems = _check(tmp_path / "r.yaml", ("stages.caption.max_new_tokens=8",))[1]
    line = text.splitlines().index("seed: -1") + 1
    assert [(p.path, p.line) for p in problems] == [("seed", line)]
