"""Issue 28, item 7: `prefgen train` checks the model before it reads any data, in the words `build` uses."""

from click.testing import CliRunner

from prefgen.cli.main import cli


def train(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args)])


def test_a_missing_model_folder_is_said_as_build_says_it_before_the_data_is_read(tmp_path):
    result = train("--data", tmp_path / "no-store", "--model", "/no/such/dir", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: model path /no/such/dir does not exist"
    assert not (tmp_path / "run").exists()


def test_a_folder_that_is_no_model_is_said_in_one_line(tmp_path, make_store):
    store = make_store({"v1": 2})
    (tmp_path / "empty").mkdir()
    result = train("--data", store.root, "--model", tmp_path / "empty", "--out", tmp_path / "run")
    assert result.stderr.strip() == (
        f"error: model folder {tmp_path / 'empty'} has no config.json (not a transformers model folder)"
    )


def test_a_hub_id_not_in_the_cache_is_said_offline(tmp_path, make_store):
    store = make_store({"v1": 2})
    result = train("--data", store.root, "--model", "someone/absent", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: model 'someone/absent' is not available offline: run `hf download")
    assert "Repo id must be" not in result.output
