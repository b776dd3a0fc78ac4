"""Issue 28 (smaller items): `prefgen models tiny` prints a recipe entry that works from any recipe's folder."""

from click.testing import CliRunner

from prefgen.cli.main import cli


def test_the_recipe_hint_is_absolute_and_says_how_recipe_paths_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["models", "tiny", "--clip", "--out", "build/clip"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"tiny open_clip model -> build/clip  (recipe: models.clip = {{model: tiny, path: {tmp_path}/build/clip}})",
        "(a relative path in a recipe is read from the recipe file's folder, not from the current one)",
    ]
