"""A tiny pretraining run (a few steps on a few dozen scenes), shared by the model tests of this folder."""

import pytest


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory):
    """(output folder, report) of ``pretrain`` with 3 CLIP and 6 VLM steps: seconds, not minutes."""
    from prefgen.shapes.pretrain.run import pretrain

    out = tmp_path_factory.mktemp("shapes-pretrain")
    report = pretrain(out, steps=(3, 6), seed=0, progress=False, n_scenes=48, eval_scenes=3)
    return out, report
