"""Shared fixtures. Nothing in the tests may reach a hub, and the Hugging Face caches live in a temporary folder.

Heavy things (tiny models, a Ray cluster, a loaded engine) are session fixtures, built once per worker on first use
and shared read-only: a test that needs to change one copies it first. Each takes ``tmp_path_factory`` for its files
and cleans up after itself in the fixture's own teardown (``yield``, then stop what it started, and only that). Those
that two workers must not both hold live in a module listed in ``ONE_WORKER`` below.
"""

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="prefgen-tests-hf-")
os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    NO_ALBUMENTATIONS_UPDATE="1",
    HF_HOME=_CACHE,
    HF_DATASETS_CACHE=os.path.join(_CACHE, "datasets"),
    TOKENIZERS_PARALLELISM="false",
    HF_HUB_DISABLE_PROGRESS_BARS="1",
    HF_DATASETS_DISABLE_PROGRESS_BARS="1",
)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One torch (OpenMP) thread per worker and per process it starts: with two workers on two cores, two threads each
    # spin against each other and every model test runs several times slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

# ------------------------------------------------------------------------------------------ workers (-n)

#: Test modules whose tests all run on one xdist worker: each holds something that two workers must not both hold.
#: (xdist's own ``--dist loadgroup`` cannot do it under pytest 9.2: it writes the group into ``item._nodeid``, which
#: pytest no longer reads, so its ``xdist_group`` marks were silently ignored and the Ray tests ran on both workers.)
ONE_WORKER = {
    "tests/engine/executors/test_ray.py": "ray",  # one Ray cluster per session (tests/engine/executors/conftest.py)
    "tests/engine/executors/test_ray_vllm.py": "ray-vllm",  # a cluster of its own, with vLLM in its actors
    "tests/models/test_vllm.py": "vllm",  # one vLLM engine per process: these share it (one start, ~20 s)
    "tests/models/test_vllm_build.py": "vllm",  # collected after test_vllm.py: the same engine serves its builds
    "tests/train/test_distributed.py": "processes",  # two training processes at a time
}


def pytest_xdist_make_scheduler(config, log):
    """Under ``-n`` (``--dist load`` or ``loadgroup``): tests handed out one at a time to whichever worker is free,
    except that the modules of ``ONE_WORKER`` each go whole to one worker, first (the longest units start first)."""
    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return ONE_WORKER.get(nodeid.split("::", 1)[0], nodeid)

    return OneWorkerModules(config, log)


# ------------------------------------------------------------------------------------------ the quick loop

#: ``scripts/test.sh --quick`` runs the tests not marked ``slow``; of the tests run once per tiny model family
#: (tests/models), it keeps this family's and leaves the others to the whole suite.
QUICK_FAMILY = "llava"


def pytest_collection_modifyitems(config, items):
    from models.conftest import FAMILIES

    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(value in FAMILIES and value != QUICK_FAMILY for value in params.values() if isinstance(value, str)):
            item.add_marker(pytest.mark.slow)


def pair_rows(prefix: str, n: int, margin_step: float = 0.1) -> list[dict]:
    """Literal preference rows in the output contract, each with its own small image."""
    return [
        {
            "id": f"{prefix}{i}",
            "images": [Image.new("RGB", (8, 6), (10 * i, 100, 200))],
            "prompt": [{"role": "user", "content": f"What is in picture {i}?"}],
            "chosen": [{"role": "assistant", "content": f"A blue square number {i}."}],
            "rejected": [{"role": "assistant", "content": f"A red dog number {i}."}],
            "image_id": f"img{prefix}{i}",
            "question": f"What is in picture {i}?",
            "method": "test",
            "chosen_score": 1.0 + margin_step * i,
            "rejected_score": 1.0,
            "margin": margin_step * i,
        }
        for i in range(n)
    ]


@pytest.fixture
def make_store(tmp_path):
    """Build a store from literal rows: ``make_store({"v1": 3, "v2": 2})`` publishes v1 with 3 rows, then v2."""
    from prefgen.store.folder import Store

    def make(versions: dict[str, int], root=None):
        store = Store.create(root or tmp_path / "store")
        for version, n in versions.items():
            with store.draft(version) as draft:
                draft.write_shard(0, pair_rows(version, n))
                draft.publish(message=f"{version} rows")
        return store

    return make


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """Folder holding one tiny model per family plus a tiny CLIP, built on first use."""
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_vlm_dir(tiny_root):
    from prefgen.models.tiny.families import build_tiny_vlm

    built = {}

    def get(family: str):
        if family not in built:
            built[family] = build_tiny_vlm(family, tiny_root / family)
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_clip_dir(tiny_root):
    from prefgen.models.tiny.families import build_tiny_clip

    return build_tiny_clip(tiny_root / "clip")


@pytest.fixture(scope="session")
def tiny_llava(tiny_vlm_dir):
    """The tiny LLaVA, loaded once for the session (stage tests that need one VLM, not every family)."""
    from prefgen.models import VLM

    return VLM.load(path=str(tiny_vlm_dir("llava")), device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_dir):
    from prefgen.models import ClipScorer

    return ClipScorer.load(model="tiny", path=str(tiny_clip_dir), device="cpu")
