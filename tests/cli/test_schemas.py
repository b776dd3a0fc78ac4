import json
from pathlib import Path

from click.testing import CliRunner

from prefgen.cli.main import cli
from prefgen.cli.schemas import schemas

COMMITTED = Path(__file__).parents[2] / "schemas"


def test_committed_schemas_match_the_models(tmp_path):
    result = CliRunner().invoke(cli, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("recipe", "record", "manifest"):
        fresh = (tmp_path / f"{name}.schema.json").read_text()
        committed = (COMMITTED / f"{name}.schema.json").read_text()
        assert fresh == committed, f"schemas/{name}.schema.json is stale: run `prefgen schema --out schemas/`"


def test_recipe_schema_knows_every_stage_and_its_params():
    recipe = schemas()["recipe"]
    stage_refs = recipe["properties"]["stages"]["items"]["discriminator"]["mapping"]
    assert set(stage_refs) == {
        "self_question",
        "caption",
        "answer",
        "self_enhance",
        "corrupt",
        "answer_corrupted",
        "csr_search",
        "clip_score",
        "logprob_score",
        "reward_mix",
        "shapes_oracle",
        "shapes_answer",
        "select_pairs",
    }
    csr = recipe["$defs"]["CsrSearchParams"]["properties"]
    assert csr["lam"]["default"] == 0.9 and csr["lam"]["maximum"] == 1.0
    assert csr["mode"]["enum"] == ["paper", "reference"]
    assert recipe["$defs"]["CsrSearchParams"]["additionalProperties"] is False


def test_record_schema_requires_the_trl_columns():
    record = schemas()["record"]
    assert record["required"] == ["id", "images", "prompt", "chosen", "rejected"]
    message = record["$defs"]["Message"]
    assert message["properties"]["role"]["enum"] == ["system", "user", "assistant"]


def test_schemas_are_valid_json_with_a_dialect():
    for name in ("recipe", "record", "manifest"):
        data = json.loads((COMMITTED / f"{name}.schema.json").read_text())
        assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
