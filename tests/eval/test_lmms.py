"""The lmms-eval hand-off (``prefgen.eval.lmms``): the local shapes task, the scoring functions its YAMLs name, reading
lmms-eval's results, the adapter table, and, with the ``lmms`` extra installed, the shapes VLM run end to end through
lmms-eval's own ``llava_hf`` adapter and compared with prefgen's own answers on the same questions."""

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import prefgen
from prefgen.core.errors import PrefgenError
from prefgen.eval import lmms, lmms_task
from prefgen.eval.rounds import Setting, round_evaluator
from prefgen.shapes.metrics import pope_questions
from prefgen.shapes.pretrain.data import SHORT_ANSWER
from prefgen.shapes.world import Scene, make_scenes, render, scene_of
from prefgen.train.lineage import flatten_metrics

SHAPES_VLM = Path(prefgen.__file__).parent / "shapes" / "checkpoints" / "shapes-vlm"
needs_lmms = pytest.mark.skipif(  # scripts/test.sh installs it and sets PREFGEN_REQUIRE_EXTRAS: there, it must run
    importlib.util.find_spec("lmms_eval") is None and not os.environ.get("PREFGEN_REQUIRE_EXTRAS"),
    reason='lmms-eval is not installed: pip install -e ".[lmms]" (scripts/test.sh installs it)',
)


@pytest.fixture(autouse=True)
def _pil_as_it_was():
    """lmms-eval sets PIL's ``ImageFile.LOAD_TRUNCATED_IMAGES`` when imported; tests that import it in-process must
    not leave truncated images decodable for the tests that run after them in the same worker."""
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    yield
    ImageFile.LOAD_TRUNCATED_IMAGES = before


def _read(path: Path) -> list[dict]:
    from datasets import load_dataset

    return list(load_dataset("parquet", data_files={"test": str(path)}, cache_dir=str(path.parent / "c"))["test"])


def test_the_task_asks_the_shapes_pope_questions_about_the_rendered_scenes(tmp_path):
    counts = lmms.write_task(tmp_path, n=3, seed=1)
    scenes = make_scenes(3, 1, "eval")
    assert counts == {
        **{f"shapes_pope_{s}": len(pope_questions(scenes, s, 1)) for s in lmms.POPE_SPLITS},
        "shapes_caption": 3,
    }
    for split in lmms.POPE_SPLITS:
        rows, asked = _read(tmp_path / f"shapes_pope_{split}.parquet"), pope_questions(scenes, split, 1)
        assert [(r["question"], r["answer"], r["scene"]) for r in rows] == [
            (q["question"], "yes" if q["label"] else "no", q["scene"]) for q in asked
        ]
        assert [r["question_id"] for r in rows] == list(range(len(asked)))
        assert rows[0]["image"].tobytes() == render(scenes[rows[0]["scene"]]).tobytes()
        yaml = (tmp_path / f"shapes_pope_{split}.yaml").read_text()
        assert f"task: shapes_pope_{split}\n" in yaml and "tag: shapes_pope\n" in yaml
        assert f"post_prompt: {json.dumps(SHORT_ANSWER)}\n" in yaml and "max_new_tokens: 8\n" in yaml
        assert "aggregation: !function lmms_eval.tasks.pope.utils.pope_aggregate_f1_score\n" in yaml
    captions = _read(tmp_path / "shapes_caption.parquet")
    assert [r["question"] for r in captions] == ["Describe the image."] * 3
    assert [Scene.from_dict(json.loads(r["scene"])) for r in captions] == scenes
    assert "max_new_tokens: 48\n" in (tmp_path / "shapes_caption.yaml").read_text()


def test_the_cli_writes_the_task(tmp_path):
    from prefgen.cli.shapes import shapes

    result = CliRunner().invoke(shapes, ["lmms-task", "--out", str(tmp_path / "t"), "-n", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("shapes_pope_random: 12 rows, ") and "shapes_caption: 2 rows ->" in result.output
    assert sorted(p.name for p in (tmp_path / "t").glob("*.yaml")) == [
        "shapes_caption.yaml",
        "shapes_pope_adversarial.yaml",
        "shapes_pope_popular.yaml",
        "shapes_pope_random.yaml",
    ]
    result = CliRunner().invoke(shapes, ["lmms-task", "--out", str(tmp_path / "u"), "-n", "0"])
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output


# label, answer: prefgen's rule reads "yes." and "yes, there is." as yes, "" and "No, ..." as no; exact match reads
# only a bare "yes" / "no" (lower-cased) as an answer
ANSWERS = [("yes", "yes."), ("no", "No, there is not."), ("no", "Yes"), ("yes", ""), ("no", "yes, there is.")]


def _pope_results(process) -> dict[str, list]:
    found: dict[str, list] = {}
    for i, (label, answer) in enumerate(ANSWERS):
        for metric, value in process({"question_id": i, "answer": label}, [answer]).items():
            found.setdefault(metric, []).append(value)
    return found


def test_prefgens_reading_of_pope_answers():
    found = _pope_results(lmms_task.prefgen_pope_results)  # TP, TN, FP, FN, FP
    assert lmms_task.prefgen_pope_accuracy(found["prefgen_pope_accuracy"]) == pytest.approx(2 / 5)
    assert lmms_task.prefgen_pope_f1(found["prefgen_pope_f1"]) == pytest.approx(0.4)  # P 1/3, R 1/2
    assert lmms_task.prefgen_pope_yes_ratio(found["prefgen_pope_yes_ratio"]) == pytest.approx(3 / 5)


@needs_lmms
def test_lmms_evals_pope_scoring_beside_prefgens_on_the_same_answers():
    from lmms_eval.tasks.pope import utils

    found = _pope_results(lmms_task.pope_process_results)
    assert utils.pope_aggregate_accuracy(found["pope_accuracy"]) == 0.0  # "Yes" is no "no"; nothing else is exact
    assert utils.pope_aggregate_yes_ratio(found["pope_yes_ratio"]) == pytest.approx(2 / 5)  # the labels' share
    assert lmms_task.prefgen_pope_accuracy(found["prefgen_pope_accuracy"]) == pytest.approx(2 / 5)


def test_captions_are_scored_with_the_shapes_chair():
    scenes = [scene_of([("red", "circle")]), scene_of([("green", "cross"), ("blue", "circle")])]
    texts = ["There is a red circle. There is a blue square.", "There is a green cross."]
    found: dict[str, list] = {}
    for scene, text in zip(scenes, texts):
        for metric, value in lmms_task.caption_process_results({"scene": json.dumps(scene.to_dict())}, [text]).items():
            found.setdefault(metric, []).append(value)
    assert lmms_task.chair_s(found["chair_s"]) == 0.5
    assert lmms_task.chair_i(found["chair_i"]) == pytest.approx(1 / 3)
    assert lmms_task.recall(found["recall"]) == pytest.approx(2 / 3)


def test_results_keep_numbers_without_filter_or_stderr(tmp_path):
    path = tmp_path / "x_results.json"
    values = {"alias": "shapes_caption", "chair_s,none": 0.25, "chair_s_stderr,none": "N/A", "recall,none": 1}
    path.write_text(json.dumps({"results": {"shapes_caption": values, "shapes_pope": {"alias": "shapes_pope"}}}))
    assert lmms.read_results(path) == {"shapes_caption": {"chair_s": 0.25, "recall": 1}}
    path.write_text(json.dumps({"results": {"shapes_pope": {"alias": "shapes_pope"}}}))
    with pytest.raises(PrefgenError, match="holds no metric: every task failed"):
        lmms.read_results(path)


def test_the_adapter_comes_from_the_model_type(tmp_path):
    assert lmms.adapter_for(SHAPES_VLM) == "llava_hf"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "idefics3"}))
    with pytest.raises(PrefgenError) as raised:
        lmms.adapter_for(tmp_path)
    assert str(raised.value) == (
        "lmms-eval cannot run model_type 'idefics3': its idefics2 adapter miscounts the image tokens, the generic "
        "huggingface one fails on transformers 5"
    )
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "blip"}))
    with pytest.raises(PrefgenError, match="cannot run model_type 'blip': adapters are known for internvl, llava, "):
        lmms.adapter_for(tmp_path)
    with pytest.raises(PrefgenError, match="no model folder with a readable config.json at"):
        lmms.adapter_for(tmp_path / "missing")


def test_without_the_extra_the_error_says_how_to_install(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lmms_eval" else real(name, *a))
    with pytest.raises(PrefgenError) as raised:
        lmms.run_lmms(SHAPES_VLM, ["shapes_pope"], tmp_path)
    assert str(raised.value) == 'lmms-eval is not installed; it is an optional extra: pip install -e ".[lmms]"'
    with pytest.raises(PrefgenError, match="lmms-eval is not installed"):
        round_evaluator(["lmms:tasks=shapes_pope"])  # refused before any training
    with pytest.raises(PrefgenError, match=r"name at least one lmms-eval task \(--tasks\)"):
        lmms.run_lmms(SHAPES_VLM, [], tmp_path)


def test_a_failed_run_is_one_line_from_its_log(tmp_path):
    log = tmp_path / "lmms-eval.log"
    log.write_text(
        "\x1b[32m2026-12-02\x1b[0m | INFO | starting\n"
        "Traceback (most recent call last):\n"
        '  File "/x/lmms_eval/api/task.py", line 1478, in doc_to_target\n'
        "    raise TypeError\n"
        "TypeError\n"
        "\x1b[31m2026-12-02 | ERROR    | lmms_eval.__main__:cli_evaluate:614 - Error during evaluation: .\x1b[0m\n"
    )
    assert lmms._last_error(log) == "TypeError (in doc_to_target, task.py:1478)"
    log.write_text("2026-12-02 | ERROR    | lmms_eval.__main__:cli_evaluate:614 - Tasks not found: nope\n")
    assert lmms._last_error(log) == "Tasks not found: nope"


def test_the_round_spec_writes_the_shapes_task_only_when_asked(monkeypatch):
    calls = []

    def fake_run(model, tasks, out, include=None, limit=None, device="auto"):
        calls.append((tasks, include and sorted(p.name for p in include.glob("*.yaml")), limit, device))
        return {"results": {"t": {"m": 0.5}}}

    monkeypatch.setattr(lmms, "run_lmms", fake_run)
    monkeypatch.setattr(lmms, "_require_lmms", lambda: None)
    evaluate = round_evaluator(["lmms:tasks=shapes_pope+shapes_caption,limit=3"], Setting(n=2, device="cpu"))
    found = evaluate(SHAPES_VLM)
    assert found == {"lmms": {"t": {"m": 0.5}, "spec": "lmms:tasks=shapes_pope+shapes_caption,limit=3"}}
    assert flatten_metrics(found)["lmms.t.m"] == 0.5  # as the lineage and `prefgen rounds --metric 'lmms.*'` name it
    assert round_evaluator(["lmms:tasks=pope_pop"])(SHAPES_VLM)["lmms"]["t"] == {"m": 0.5}
    yamls = [
        "shapes_caption.yaml",
        "shapes_pope_adversarial.yaml",
        "shapes_pope_popular.yaml",
        "shapes_pope_random.yaml",
    ]
    assert calls == [(["shapes_pope", "shapes_caption"], yamls, 3, "cpu"), (["pope_pop"], None, None, "auto")]
    with pytest.raises(PrefgenError, match="--eval lmms:tasks=a,limit=x: limit must be a whole number, not 'x'"):
        round_evaluator(["lmms:tasks=a,limit=x"])


def test_models_check_names_the_lmms_adapter_or_why_there_is_none(tiny_vlm_dir):
    from prefgen.cli.models import models
    from prefgen.models.check import LMMS_ADAPTERS, LMMS_NO_ADAPTER, TESTED

    assert set(LMMS_ADAPTERS) | set(LMMS_NO_ADAPTER) == set(TESTED) and not set(LMMS_ADAPTERS) & set(LMMS_NO_ADAPTER)
    result = CliRunner().invoke(models, ["check", str(SHAPES_VLM)])
    assert "lmms-eval:     runs with its llava_hf adapter (prefgen eval --bench lmms)\n" in result.output
    result = CliRunner().invoke(models, ["check", str(tiny_vlm_dir("idefics3"))])
    assert result.exit_code == 0 and "lmms-eval:     cannot run it: its idefics2 adapter miscounts" in result.output


@needs_lmms
@pytest.mark.slow
def test_the_shapes_vlm_through_lmms_evals_llava_hf_adapter(tmp_path):
    """`prefgen eval --bench lmms` on 4 scenes, 8 questions a split: lmms-eval's adapter gives the answers and
    captions prefgen gives (prefgen's rule on them = prefgen's own POPE; the same CHAIR), and its exact match
    scores the shapes VLM's "yes." as wrong."""
    from prefgen.cli.eval import eval_command
    from prefgen.eval.shapes import load_vlm
    from prefgen.shapes import metrics

    out = tmp_path / "lmms.json"
    args = ["--bench", "lmms", "--model", str(SHAPES_VLM), "--tasks", "shapes_pope,shapes_caption", "--n", "4"]
    result = CliRunner().invoke(eval_command, [*args, "--limit", "8", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert (report["lmms_eval"], report["adapter"], report["scenes"], report["limit"]) == ("0.7.3", "llava_hf", 4, 8)
    assert sorted(report["lmms"]) == ["shapes_caption", *sorted(f"shapes_pope_{s}" for s in lmms.POPE_SPLITS)]

    vlm, scenes = load_vlm(SHAPES_VLM, "cpu"), make_scenes(4, 0, "eval")
    answer = metrics.vlm_answerer(vlm, SHORT_ANSWER)
    for split in lmms.POPE_SPLITS:
        asked = pope_questions(scenes, split, 0)[:8]
        said = answer([render(scenes[q["scene"]]) for q in asked], [q["question"] for q in asked])
        assert [s["answer"] for s in report["samples"][f"shapes_pope_{split}"][:8]] == said
        own = metrics.pope_metrics([q["label"] for q in asked], said)
        found = report["lmms"][f"shapes_pope_{split}"]
        assert found["prefgen_pope_accuracy"] == pytest.approx(own["accuracy"])
        assert found["prefgen_pope_f1"] == pytest.approx(own["f1"])
        exact = sum(a.strip().lower() == ("yes" if q["label"] else "no") for a, q in zip(said, asked)) / len(asked)
        assert found["pope_accuracy"] == pytest.approx(exact)
        assert found["pope_yes_ratio"] == pytest.approx(sum(q["label"] for q in asked) / len(asked))
    chair, texts = metrics.run_chair(metrics.vlm_describer(vlm), scenes)
    assert [s["answer"] for s in report["samples"]["shapes_caption"]] == texts
    assert report["lmms"]["shapes_caption"] == {k: pytest.approx(chair[k]) for k in ("chair_s", "chair_i", "recall")}
    assert result.output.startswith(
        "rule: lmms-eval's numbers, not the papers': pope_* score an answer by exact match"
    )
    assert f"  shapes_caption chair_s {chair['chair_s']:.3f}  chair_i {chair['chair_i']:.3f}" in result.output


@needs_lmms
def test_lmms_eval_loads_the_written_task(tmp_path):
    """lmms-eval's own task loader reads the YAMLs: the tag, the parquet data, the prompt with prefgen's suffix."""
    from lmms_eval.tasks import TaskManager, get_task_dict

    lmms.write_task(tmp_path / "task", n=2)
    shutil.move(tmp_path / "task", tmp_path / "moved")  # the data files are named relative to the YAMLs
    manager = TaskManager(include_path=str(tmp_path / "moved"), include_defaults=False)
    tasks = get_task_dict(["shapes_pope", "shapes_caption"], manager)
    assert sorted(_leaves(tasks)) == ["shapes_caption", *sorted(f"shapes_pope_{s}" for s in lmms.POPE_SPLITS)]
    task = _leaves(tasks)["shapes_pope_random"]
    doc = task.test_docs()[0]
    assert (
        task.doc_to_text(doc) == pope_questions(make_scenes(2, 0, "eval"), "random", 0)[0]["question"] + SHORT_ANSWER
    )


def _leaves(tasks: dict) -> dict:
    """Task name -> task, through the groups and tags of ``get_task_dict`` (whose keys may be group objects)."""
    found = {}
    for name, task in tasks.items():
        if isinstance(task, dict):
            found.update(_leaves(task))
        else:
            found[name if isinstance(name, str) else str(name)] = task
    return found
