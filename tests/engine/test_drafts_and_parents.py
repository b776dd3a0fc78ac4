"""Issue 28, items 1 and 9: a failed build's draft never blocks the fixed rerun, and `parent` is the version a build
or derive really came from (none for an unrelated recipe; every version a derive read)."""

from pathlib import Path

import build_stages
import pytest
from PIL import Image

from prefgen.core.errors import PrefgenError
from prefgen.engine.runner import BuildOptions, run_build
from prefgen.recipe.catalogue import STAGES
from prefgen.store.derive import derive
from prefgen.store.folder import Store

RECIPE = """\
name: {name}
source: {{type: image_folder, path: images}}
stages:
  - type: toy_question
  - type: toy_answer
    suffix: "{suffix}"
    fail_all: {fail_all}
  - type: toy_pairs
output: {{store: store}}
"""


@pytest.fixture(autouse=True)
def toy_stages(monkeypatch):
    for name, cls in build_stages.TOY_STAGES.items():
        monkeypatch.setitem(STAGES, name, cls)


def recipe(folder: Path, name="toy", suffix="!", fail_all="false", file="recipe.yaml") -> Path:
    images = folder / "images"
    if not images.is_dir():
        images.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 10), (40 * i, 50, 200)).save(images / f"img-{i}.png")
    path = folder / file
    path.write_text(RECIPE.format(name=name, suffix=suffix, fail_all=fail_all))
    return path


def build(path: Path):
    options = BuildOptions(quiet=True)
    result = run_build(path, options)
    return result.manifest


def test_a_fixed_recipe_replaces_the_draft_its_failed_build_left(tmp_path, capsys):
    with pytest.raises(PrefgenError):
        run_build(recipe(tmp_path, fail_all="true"), BuildOptions())
    assert [p.name for p in (tmp_path / "store" / ".prefgen" / "drafts").iterdir()] == ["v1"]
    capsys.readouterr()
    manifest = run_build(recipe(tmp_path), BuildOptions()).manifest  # the fix: no --fresh needed
    assert manifest.version == "v1" and manifest.rows == 3
    assert (
        "note: replaced an unfinished draft of v1 left by a different build (its finished stages stay in the stage "
        "cache)" in " ".join(capsys.readouterr().err.split())
    )
    assert not (tmp_path / "store" / ".prefgen" / "drafts" / "v1").exists()


def test_a_failed_build_in_a_store_with_versions_does_not_block_the_next(tmp_path):
    assert build(recipe(tmp_path)).version == "v1"
    with pytest.raises(PrefgenError):
        build(recipe(tmp_path, suffix="?", fail_all="true"))
    assert (tmp_path / "store" / ".prefgen" / "drafts" / "v2").is_dir()
    fixed = build(recipe(tmp_path, suffix="?"))
    assert (fixed.version, fixed.rows, fixed.parent) == ("v2", 3, "v1")


def test_fresh_still_discards_a_draft_of_the_same_build(tmp_path):
    store = Store.create(tmp_path / "store")
    with store.draft("v1", meta={"a": 1}) as draft:
        (draft.path / "marker").write_text("x")
    again = store.draft("v1", meta={"a": 1})
    assert (again.path / "marker").exists() and again.replaced is False  # same build: continued
    again.close()
    fresh = store.draft("v1", meta={"a": 1}, fresh=True)
    assert not (fresh.path / "marker").exists() and fresh.replaced is False
    fresh.close()
    other = store.draft("v1", meta={"a": 2})
    assert other.replaced is True
    other.close()


def test_parent_is_the_previous_build_of_the_same_recipe_only(tmp_path):
    first = build(recipe(tmp_path, name="sena-like"))
    unrelated = build(recipe(tmp_path, name="csr-like", file="other.yaml"))
    revised = build(recipe(tmp_path, name="sena-like", suffix="?"))
    assert [(m.version, m.parent) for m in (first, unrelated, revised)] == [("v1", None), ("v2", None), ("v3", "v1")]


def test_a_derive_over_two_versions_records_both(tmp_path):
    build(recipe(tmp_path))
    build(recipe(tmp_path, suffix="?"))
    store = Store(tmp_path / "store")
    derived = derive(store, "SELECT * FROM v1 UNION ALL SELECT * FROM v2", message="both")
    assert (derived.rows, derived.parents, derived.parent) == (6, ["v1", "v2"], "v2")
    assert store.manifest(derived.version).parents == ["v1", "v2"]


def test_versions_lists_every_parent_of_a_derive(tmp_path):
    from click.testing import CliRunner

    from prefgen.cli.main import cli

    build(recipe(tmp_path))
    build(recipe(tmp_path, suffix="?"))
    store = Store(tmp_path / "store")
    derive(store, "SELECT * FROM v1 UNION ALL SELECT * FROM v2", message="both")
    result = CliRunner().invoke(cli, ["versions", str(store.root)])
    assert result.exit_code == 0, result.output
    v3 = next(line for line in result.output.splitlines() if line.startswith("v3"))
    assert v3.split()[:3] == ["v3", "6", "v1+v2"]
