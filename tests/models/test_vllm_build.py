"""Builds on the vLLM engine: the same rows whatever the batching and whichever executor runs them (in process, or
Ray with one engine per actor), a cache key of their own, and validate refusing what vLLM cannot do before any
model loads. After tests/models/test_vllm.py in the vLLM tests' unit (tests/conftest.py ONE_WORKER), so that the
shapes VLM's engine, started there, serves these builds too; the tiny Qwen2-VL, which replaces it, is the last."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from seva_recipe import seva_recipe

from prefgen.engine.runner import BuildOptions, run_build
from prefgen.models import Prompt

ROOT = Path(__file__).parents[2]
VLM = ROOT / "prefgen" / "shapes" / "checkpoints" / "shapes-vlm"
PREFGEN = [sys.executable, "-m", "prefgen.cli"]
pytestmark = pytest.mark.slow


def _recipe(folder: Path, engine: str = "vllm", n: int = 8) -> Path:
    return seva_recipe(folder, f"recipe-{engine}.yaml", name="vllm-seva", engine=engine, n=n)


def _rows(store: Path, version: str = "v1") -> list[dict]:
    import pyarrow.parquet as pq

    table = pq.read_table(sorted((store / "data" / version).glob("*.parquet")))
    skip = ("created_at", "recipe_fingerprint")
    rows = [{k: v for k, v in row.items() if k not in skip} for row in table.to_pylist()]
    return sorted(rows, key=lambda row: row["id"])


def test_rows_do_not_depend_on_batching_and_the_engine_keys_the_cache(tmp_path):
    recipe = _recipe(tmp_path)
    small = run_build(recipe, BuildOptions(out=tmp_path / "a", batch_size=2, shard_size=4, quiet=True))
    large = run_build(recipe, BuildOptions(out=tmp_path / "b", batch_size=8, shard_size=8, quiet=True))
    assert small.manifest.rows == large.manifest.rows > 0 and small.manifest.drops == large.manifest.drops
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
    assert small.manifest.recipe["models"]["vlm"]["engine"] == "vllm"
    # the same recipe on the transformers engine, into the same store: nothing of the vLLM cache is reused
    hf = _recipe(tmp_path, "hf")
    other = run_build(hf, BuildOptions(out=tmp_path / "a", batch_size=2, shard_size=4, quiet=True))
    assert other.cached["answer"] == 0 and other.computed["answer"] == 2
    on_hf = {(r["image_id"], r["question"]): r["chosen"][0]["content"] for r in _rows(tmp_path / "a", "v2")}
    on_vllm = {(r["image_id"], r["question"]): r["chosen"][0]["content"] for r in _rows(tmp_path / "a")}
    both = on_hf.keys() & on_vllm.keys()  # the sampled rejected answers differ by engine, and so do the drops
    assert both and all(on_hf[i] == on_vllm[i] for i in both)  # greedy: the same text


def test_validate_and_plan_refuse_what_vllm_cannot_run_before_any_model_loads(tmp_path):
    from prefgen.models.tiny.families import build_tiny_vlm

    recipe = tmp_path / "csr.yaml"
    recipe.write_text(
        f"name: csr-ref\nsource: {{type: image_folder, path: {ROOT / 'examples' / 'shapes'}, question: Describe.}}\n"
        f"models:\n  vlm: {{path: {VLM}, engine: vllm}}\n"
        f"  clip: {{model: shapes-clip, path: {ROOT / 'prefgen/shapes/checkpoints/shapes-clip'}}}\n"
        "stages:\n  - {type: csr_search, mode: reference}\n"
        "  - {type: select_pairs, chosen: csr_chosen, rejected: csr_rejected, method: csr}\n"
        f"output: {{store: {tmp_path / 'out'}}}\n"
    )
    for command in (["validate", str(recipe)], ["build", str(recipe), "--plan"]):
        result = subprocess.run([*PREFGEN, *command], capture_output=True, text=True, timeout=120)
        assert result.returncode != 0
        assert "stages[0].mode" in result.stdout + result.stderr or "stages.0.mode" in result.stdout + result.stderr
        assert "diverse group search, which the vLLM engine does not have" in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    # a model whose head size vLLM's CPU attention refuses, said at the recipe's key
    folder = build_tiny_vlm("llava", tmp_path / "narrow")
    config = json.loads((folder / "config.json").read_text())
    config["text_config"].update(num_attention_heads=4, num_key_value_heads=2, head_dim=16)
    (folder / "config.json").write_text(json.dumps(config))
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(recipe.read_text().replace(str(VLM), str(folder)).replace("mode: reference", "mode: paper"))
    result = subprocess.run([*PREFGEN, "validate", str(narrow)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "models.vlm.engine" in result.stdout + result.stderr
    assert "attention head size is 16" in result.stdout + result.stderr


def test_rounds_build_each_round_on_vllm_with_the_model_the_round_before_trained(tmp_path):
    from click.testing import CliRunner

    from prefgen.cli import cli
    from prefgen.models.vllm.layout import needs_rekey
    from prefgen.shapes.world import write_scene_folder
    from prefgen.store.folder import Store

    write_scene_folder(tmp_path / "scenes", 6, seed=1, split="train")
    text = (ROOT / "recipes" / "shapes-csr.yaml").read_text().replace("../data/shapes-train", str(tmp_path / "scenes"))
    text = text.replace("../prefgen/shapes/checkpoints", str(ROOT / "prefgen" / "shapes" / "checkpoints"))
    recipe = tmp_path / "shapes-csr.yaml"
    recipe.write_text(text.replace("../out/", f"{tmp_path}/out/"))
    loop = tmp_path / "loop"
    result = CliRunner().invoke(
        cli,
        ["train", "--rounds", "2", "--recipe", str(recipe), "--model", str(VLM), "--out", str(loop)]
        + ["--max-steps", "1", "--quiet", "--set", "models.vlm.engine=vllm"],
    )
    assert result.exit_code == 0, result.output
    lineages = [json.loads((loop / f"round-{r}" / "model" / "lineage.json").read_text()) for r in (1, 2)]
    store = Store(lineages[0]["data"]["store"])
    for r, lineage in zip((1, 2), lineages):
        vlm = store.manifest(lineage["data"]["version"]).recipe["models"]["vlm"]
        assert vlm["engine"] == "vllm" and lineage["data"]["rows"] > 0
        built_with = Path(vlm["path"])
        assert built_with == (VLM if r == 1 else (loop / "round-1" / "model")).resolve()
    assert needs_rekey(loop / "round-1" / "model")  # saved by transformers; vLLM read its re-keyed copy


def test_ray_memory_requests_count_the_vllm_engine_and_its_kv_cache(tmp_path):
    from prefgen.engine.executors.memory import VLLM_ENGINE_MEMORY, WORKER_MEMORY, memory_requests, model_bytes
    from prefgen.engine.shards import StageRun
    from prefgen.recipe import load_recipe

    loaded = load_recipe(_recipe(tmp_path, "vllm", n=1), ("models.vlm.vllm.kv_cache_gib=2",))
    runs = [StageRun(p, None, "") for p in loaded.stages]
    asked = memory_requests(runs, loaded, tmp_path, 1, 1, {"memory": 64 * 2**30})
    weights = model_bytes(loaded.models.vlm, tmp_path)
    assert asked["answer"] == WORKER_MEMORY + weights + VLLM_ENGINE_MEMORY + 2 * 2**30
    assert asked["corrupt"] == WORKER_MEMORY


# last of the vLLM tests (tests/conftest.py ONE_WORKER): it replaces the shapes VLM's engine the others share
@pytest.mark.slow  # starts the vLLM engine
def test_a_tiny_qwen2_vl_runs_on_vllm_as_on_transformers(tiny_vlm_dir):
    from PIL import Image

    from prefgen.models import VLM, VllmVLM

    folder = tiny_vlm_dir("qwen2_vl")
    prompts = [Prompt("Describe the image.", (Image.new("RGB", (56, 56), colour),)) for colour in ("red", "blue")]
    hf = VLM.load(path=folder, dtype="float32", device="cpu")
    vllm = VllmVLM.load(path=folder, dtype="float32", device="cpu")  # replaces the shapes engine (one per process)
    try:
        expected, found = hf.generate(prompts, max_new_tokens=12), vllm.generate(prompts, max_new_tokens=12)
        assert [c.token_ids for (c,) in found] == [c.token_ids for (c,) in expected]
    finally:
        vllm.close()
