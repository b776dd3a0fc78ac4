"""Issue 28, items 2, 4 and 5: `validate`, `build --plan` and the build check what this machine has (paths,
devices, models in the local caches) without loading a model; an image folder can give every image a question;
pairs without scores are pointed out."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from prefgen.cli.main import cli
from prefgen.recipe import check_recipe, load_recipe
from prefgen.recipe.check import check_here
from prefgen.recipe.readiness import recipe_notes

ROOT = Path(__file__).resolve().parents[2]

CSR = """\
name: own-csr
source:
  type: image_folder
  path: photos
  question: Describe the image.
models:
  vlm: {vlm}
  clip: {clip}
stages:
  - type: csr_search
    beam_width: 2
    candidates_per_step: 2
    max_sentences: 2
    max_tokens_per_sentence: 6
    min_sentence_chars: 0
  - type: select_pairs
    chosen: csr_chosen
    rejected: csr_rejected
    chosen_score: csr_chosen_reward
    rejected_score: csr_rejected_reward
    method: csr
    drop_yes_no: false
    drop_duplicate_sentences: false
    drop_rejected_in_chosen: false
    max_non_alnum_fraction: 1.0
output: {{store: out}}
"""


@pytest.fixture
def write(tmp_path, tiny_vlm_dir, tiny_clip_dir):
    """Write the CSR recipe into tmp_path with two photos beside it; keyword arguments replace its parts."""
    (tmp_path / "photos").mkdir()
    for i in range(2):
        Image.new("RGB", (40, 30), (90 * i, 120, 60)).save(tmp_path / "photos" / f"p{i}.png")

    def make(**parts) -> Path:
        folder, device = parts.pop("vlm_path", tiny_vlm_dir("llava")), parts.pop("device", "cpu")
        values = {
            "vlm": f"{{path: {folder}, dtype: float32, device: {device}}}",
            "clip": f"{{model: tiny, path: {tiny_clip_dir}, device: cpu}}",
        } | parts
        path = tmp_path / "r.yaml"
        path.write_text(CSR.format(**values))
        return path

    return make


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def located(path: Path) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.path, p.message) for p in check_here(path)]


def test_a_recipe_this_machine_can_run_is_ok(write):
    result = run("validate", write())
    assert result.exit_code == 0 and result.stdout.strip().endswith("r.yaml: ok"), result.output


def test_a_missing_image_folder_is_found_by_validate(write, tmp_path):
    path = write()
    path.write_text(path.read_text().replace("path: photos", "path: no-photos"))
    assert located(path) == [
        (4, "source.path", f"image folder {tmp_path / 'no-photos'} does not exist or is not a folder")
    ]
    result = run("validate", path)
    assert result.exit_code == 1
    assert f"{path}:4: source.path: image folder {tmp_path / 'no-photos'} does not exist" in result.stderr


def test_a_missing_model_path_is_found_by_validate(write, tmp_path):
    path = write(vlm_path=tmp_path / "nowhere")
    assert located(path) == [(7, "models.vlm.path", f"model path {tmp_path / 'nowhere'} does not exist")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_found_by_validate(write):
    assert located(write(device="cuda")) == [
        (7, "models.vlm.device", "device 'cuda' was asked for, but torch sees no CUDA GPU; use `device: cpu`")
    ]


def test_a_hub_model_not_in_the_cache_is_found_offline(write):
    found = located(write(vlm="{id: someone/absent, revision: main, device: cpu}"))
    assert [(line, where) for line, where, _ in found] == [(7, "models.vlm.id")]
    assert found[0][2].startswith("model 'someone/absent' at revision main is not available offline: run `hf download")


def test_an_open_clip_tag_not_in_the_cache_is_found_offline(write):
    found = located(write(clip="{model: ViT-B-32, pretrained: openai, device: cpu}"))
    assert [(line, where) for line, where, _ in found] == [(8, "models.clip.pretrained")]
    assert found[0][2].startswith("CLIP model 'timm/vit_base_patch32_clip_224.openai' is not available offline")


def test_an_unknown_open_clip_tag_is_found(write):
    found = located(write(clip="{model: ViT-B-32, pretrained: opena, device: cpu}"))
    assert found[0][1:] == (
        "models.clip.pretrained",
        "open_clip model 'ViT-B-32' has no pretrained tag 'opena'; known tags: openai, laion400m_e31, laion400m_e32, "
        "laion2b_e16, laion2b_s34b_b79k, datacomp_xl_s13b_b90k, ...",
    )


def test_plan_exits_non_zero_on_anything_missing(write, tmp_path):
    result = run("build", write(vlm_path=tmp_path / "nowhere"), "--plan")
    assert result.exit_code == 1
    assert f"MISSING: models.vlm.path: model path {tmp_path / 'nowhere'} does not exist" in result.stdout
    assert result.stdout.strip().endswith("the build would stop: 1 problem(s) above")
    assert not (tmp_path / "out").exists()


def test_a_clip_that_cannot_load_stops_the_build_before_any_stage(write, tmp_path):
    result = run("build", write(clip="{model: ViT-B-32, pretrained: openai, device: cpu}"), "-q")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: CLIP model 'timm/vit_base_patch32_clip_224.openai' is not available")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # no draft, no stage cache: nothing ran


def test_an_image_folder_with_a_question_runs_csr(write, tmp_path):
    path = write()
    assert check_recipe(path) == []
    without = path.read_text().replace("  question: Describe the image.\n", "")
    (tmp_path / "plain.yaml").write_text(without)
    assert check_recipe(tmp_path / "plain.yaml")[0].message == (
        "stage 'csr_search' reads column 'question', which neither the source nor an earlier stage writes"
    )
    result = run("build", path, "-q")
    assert result.exit_code == 0, result.output
    from prefgen.store.folder import Store
    from prefgen.store.query import run_query

    rows = run_query(Store(tmp_path / "out"), "SELECT question, prompt FROM pairs").to_pylist()
    assert rows and {r["question"] for r in rows} == {"Describe the image."}
    assert {r["prompt"][0]["content"] for r in rows} == {"Describe the image."}


def test_an_unset_question_leaves_the_fingerprint_of_older_recipes_alone():
    recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml")
    assert "question" not in recipe.source.identity()
    assert recipe.fingerprint() == "4f712ee0f2a19a55"  # as published before `question` existed


def test_pairs_without_scores_and_unused_models_are_noted(write):
    path = write()
    text = path.read_text().replace(
        "    chosen_score: csr_chosen_reward\n    rejected_score: csr_rejected_reward\n", ""
    )
    path.write_text(text)
    notes = recipe_notes(load_recipe(path))
    assert notes == [
        "stage 'select_pairs' names no chosen_score or rejected_score: the pairs' scores and margin will be empty "
        "(NULL), so a margin threshold (`min_margin`, `WHERE margin > ...`) keeps nothing; to have them, score the "
        "candidates (e.g. two clip_score stages) and name their columns"
    ]
    result = run("build", path, "--plan")
    assert result.exit_code == 0 and "note: stage 'select_pairs' names no chosen_score" in result.stdout
    assert "note: stage 'select_pairs'" in run("validate", path).stderr
    log = path.parent / "build.jsonl"
    assert run("build", path, "-q", "--log-json", log).exit_code == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["text"] for e in events if e["event"] == "note"] == notes


def test_a_declared_model_no_stage_uses_is_noted(tmp_path, tiny_clip_dir):
    path = tmp_path / "ranked.yaml"
    path.write_text(
        "name: ranked\n"
        "source: {type: manifest, path: list.jsonl, question_column: q, extra_columns: [good, bad]}\n"
        f"models: {{clip: {{model: tiny, path: {tiny_clip_dir}}}}}\n"
        "stages: [{type: select_pairs, chosen: good, rejected: bad, method: ranked}]\n"
        "output: {store: out}\n"
    )
    notes = recipe_notes(load_recipe(path))
    assert notes[0] == (
        "models.clip is declared but no stage uses it (add a stage that does, e.g. clip_score, or remove it)"
    )
    assert len(notes) == 2 and notes[1].startswith("stage 'select_pairs' names no chosen_score")
    (tmp_path / "list.jsonl").write_text("")
    assert "used by no stage" in run("build", path, "--plan").stdout


def test_the_readme_concepts_recipe_scores_its_pairs(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    concepts = text.split("\n## Concepts\n", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "concepts.yaml").write_text(concepts)
    assert check_recipe(tmp_path / "concepts.yaml") == []
    recipe = load_recipe(tmp_path / "concepts.yaml")
    assert recipe_notes(recipe) == []
    pairs = recipe.stages[-1]
    assert (pairs.chosen_score, pairs.rejected_score) == ("enhanced_answer_clip", "corrupted_answer_clip")


def cache_file(root: Path, repo: str, filename: str) -> None:
    """A file as the Hugging Face cache holds it (refs/main -> snapshots/<sha>/filename)."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    (folder / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (folder / "snapshots" / ("0" * 40) / filename).write_text("{}")


def test_models_in_the_local_caches_are_available_offline(write, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cache_file(tmp_path / "hub", "someone/present", "config.json")
    cache_file(tmp_path / "hub", "timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors")
    path = write(
        vlm="{id: someone/present, revision: main, device: cpu}",
        clip="{model: ViT-B-32, pretrained: openai, device: cpu}",
    )
    assert check_here(path) == []


def test_the_engine_counts_in_the_fingerprint_only_when_it_is_not_the_default():
    plain = load_recipe(ROOT / "recipes" / "quickstart.yaml")
    on_vllm = load_recipe(ROOT / "recipes" / "quickstart.yaml", ["models.vlm.engine=vllm"])
    roomier = load_recipe(
        ROOT / "recipes" / "quickstart.yaml", ["models.vlm.engine=vllm", "models.vlm.vllm.kv_cache_gib=2"]
    )
    assert on_vllm.fingerprint() != plain.fingerprint() == "4f712ee0f2a19a55"
    assert roomier.fingerprint() == on_vllm.fingerprint()  # how vLLM starts changes no row
