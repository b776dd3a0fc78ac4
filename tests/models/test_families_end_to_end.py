"""Every tested VLM family runs the method pipelines end to end: SENA's and CSR's tiny recipes build on it, and
`prefgen train` takes a DPO step with SENA's ICA term on what it built."""

import pytest
from engine.test_recipes_end_to_end import local_recipe

from prefgen.core.errors import PrefgenError
from prefgen.engine.runner import BuildOptions, run_build
from prefgen.recipe.training import TrainConfig
from prefgen.train.run import train

from .conftest import FAMILIES


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_builds_sena_and_csr_pairs_and_trains_a_dpo_step_with_ica(
    family, tmp_path, tiny_vlm_dir, tiny_clip_dir, make_store
):
    built = {}
    for name in ("sena", "csr"):
        recipe = local_recipe(name, tmp_path, tiny_vlm_dir, tiny_clip_dir, family)
        try:
            manifest = run_build(recipe, BuildOptions(quiet=True)).manifest
        except PrefgenError as error:  # random weights may answer the same on both images: every row a counted drop
            assert "produced no pairs" in str(error) and "stage_error" not in str(error), str(error)
            built[name] = 0
            continue
        assert "stage_error" not in manifest.drops, manifest.drops  # random weights may drop rows, never fail them
        assert manifest.rows + sum(manifest.drops.values()) >= 8  # every image became a pair or a counted drop
        built[name] = manifest.rows
    data = tmp_path / "out" / "tiny-sena" if built["sena"] else make_store({"v1": 4}).root
    lineage = train(
        str(data),
        tiny_vlm_dir(family),
        tmp_path / "m",
        TrainConfig(max_steps=1, batch_size=2, ica_weight=1.0),
        quiet=True,
    )
    assert lineage["metrics"]["steps"] == 1 and lineage["metrics"]["train_loss"] > 0
