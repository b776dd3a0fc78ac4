"""The cache key covers the code that runs: editing a real file of a copy of the package recomputes exactly the
stages whose code imports it (models included), and nothing else; local model folders count by their files."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import prefgen
from prefgen.engine.cache import model_identity
from prefgen.engine.fingerprint import module_closure, stage_modules
from prefgen.models.config import VLMConfig
from prefgen.recipe.catalogue import STAGES

PACKAGE = Path(prefgen.__file__).parent
VLM_STAGES = {"self_question", "caption", "answer", "self_enhance", "answer_corrupted", "csr_search", "logprob_score"}


def closure(stage: str, engine: str = "hf") -> set[str]:
    return {m.removeprefix("prefgen.") for m in module_closure(stage_modules(STAGES[stage], engine))}


def test_a_stage_s_closure_follows_its_imports_and_its_models_runtime():
    assert {
        "stages.csr.stage",
        "stages.csr.tree",
        "models.hf.vlm",
        "models.hf.decoding",
        "models.hf.kvcache",
        "models.candidates",
        "models.clip",
        "stages.base",
        "core.config",
    } <= closure("csr_search")
    assert {"shapes.oracle", "shapes.mentions", "shapes.world"} <= closure("shapes_oracle")
    assert {"stages.corrupt.pixels", "stages.corrupt.ops"} <= closure("answer_corrupted")
    assert not {"models.hf.vlm", "models.clip", "store.export", "store.folder", "cli.main"} & closure("select_pairs")
    assert "models.clip" not in closure("answer") and "models.hf.vlm" not in closure("clip_score")


def test_the_engine_a_recipe_names_decides_which_runtime_counts():
    hf, vllm = closure("csr_search"), closure("csr_search", "vllm")
    assert "models.hf.kvcache" in hf and not {m for m in hf if m.startswith("models.vllm")}
    assert {"models.vllm.engine", "models.vllm.layout", "models.candidates"} <= vllm
    assert "models.hf.kvcache" not in vllm


def test_imports_only_for_type_checkers_are_not_code_that_runs():
    # stages/base.py names PIL's Image under TYPE_CHECKING; answer_corrupted too: neither adds a prefgen module
    assert "models.hf.vlm" not in closure("corrupt")


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("copy")
    shutil.copytree(PACKAGE, root / "prefgen", ignore=shutil.ignore_patterns("__pycache__", "checkpoints"))
    return root


HASHES = """
import json
from prefgen.engine.fingerprint import code_hash
from prefgen.recipe.catalogue import STAGES
print(json.dumps({name: code_hash(cls) for name, cls in STAGES.items()}))
"""


def hashes(root: Path) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-c", HASHES], cwd=root, env=_env(root), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _env(root: Path) -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(root)}


@pytest.mark.parametrize(
    "edited, expected",
    [
        ("models/hf/decoding.py", VLM_STAGES),
        ("models/candidates.py", VLM_STAGES),
        ("models/vllm/engine.py", set()),  # a recipe on the transformers engine never runs it
        ("stages/csr/tree.py", {"csr_search"}),
        ("stages/corrupt/pixels.py", {"corrupt", "answer_corrupted"}),
        ("shapes/mentions.py", {"shapes_oracle", "shapes_answer"}),  # shapes_answer: through the judge
        ("models/clip.py", {"clip_score", "csr_search"}),
        ("models/sentences.py", VLM_STAGES | {"clip_score", "select_pairs"}),
        ("store/export.py", set()),
        ("store/folder.py", set()),
        ("cli/main.py", set()),
    ],
)
@pytest.mark.slow
def test_editing_a_file_changes_the_hash_of_exactly_the_stages_that_run_it(package_copy, edited, expected):
    before = hashes(package_copy)
    assert hashes(package_copy) == before  # stable when nothing changed
    path = package_copy / "prefgen" / edited
    original = path.read_text()
    try:
        path.write_text(original + "\n# an edit\n")
        after = hashes(package_copy)
    finally:
        path.write_text(original)
    assert {name for name in before if before[name] != after[name]} == expected


RECIPE = """\
name: edits
seed: 3
source: {type: manifest, path: pictures.jsonl, question_column: question, extra_columns: [good, bad]}
stages:
  - type: corrupt
  - type: select_pairs
    chosen: good
    rejected: bad
    method: toy
    drop_yes_no: false
output: {store: store}
"""

BUILD = """
import json, sys
from prefgen.engine.runner import BuildOptions, run_build
result = run_build(sys.argv[1], BuildOptions(quiet=True))
print(json.dumps({"computed": result.computed, "cached": result.cached, "up_to_date": result.up_to_date}))
"""


def build(root: Path, recipe: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", BUILD, str(recipe)], cwd=root, env=_env(root), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_build_recomputes_what_an_edit_touches_and_reuses_the_rest(package_copy, tmp_path):
    lines = []
    for i in range(3):
        Image.new("RGB", (8, 8), (40 * i, 90, 10)).save(tmp_path / f"p{i}.png")
        lines.append(
            json.dumps(
                {
                    "image": f"p{i}.png",
                    "question": f"What is {i}?",
                    "good": f"A thing {i}.",
                    "bad": f"Nothing at all {i}.",
                }
            )
        )
    (tmp_path / "pictures.jsonl").write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    first = build(package_copy, recipe)
    assert first["computed"] == {"source": 1, "corrupt": 1, "select_pairs": 1}

    export = package_copy / "prefgen" / "store/export.py"
    ops = package_copy / "prefgen" / "stages" / "corrupt" / "pixels.py"
    originals = {path: path.read_text() for path in (export, ops)}
    try:
        export.write_text(originals[export] + "\n# an edit elsewhere\n")
        untouched = build(package_copy, recipe)
        assert untouched["up_to_date"] and untouched["computed"] == {}
        ops.write_text(originals[ops] + "\n# an edit to the corruption code\n")
        edited = build(package_copy, recipe)
    finally:
        for path, text in originals.items():
            path.write_text(text)
    assert edited["computed"] == {"corrupt": 1, "select_pairs": 1} and edited["cached"] == {"source": 1}


def test_a_model_folder_under_home_counts_by_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"1234")
    config = VLMConfig(path="~/m")
    first = model_identity(config, tmp_path / "elsewhere")
    assert first["files"][0][:2] == ("model.safetensors", 4)
    (folder / "model.safetensors").write_bytes(b"123456")
    assert model_identity(config, tmp_path / "elsewhere") != first
