"""The lmms-eval hand-off: run lmms-eval on a model folder in a subprocess and keep its numbers, labelled as its own.

lmms-eval is an optional extra (``pip install -e ".[lmms]"``, pinned to the version tested here). Its numbers are
*lmms-eval's*, not the papers': its POPE scores an answer by exact match ("Yes." is wrong) and its
``pope_yes_ratio`` is the share of questions labelled yes; its CHAIR task (``coco_cap_chair``) has its own ground
truth and prompt. So they are recorded as ``lmms.<task>.<metric>`` and never mixed with prefgen's own
``chair`` / ``pope`` numbers.

``write_task`` writes a local lmms-eval task from shapes scenes (POPE's three splits and captioning, data in parquet
beside the YAMLs), so the hand-off runs offline on exactly the scenes ``prefgen eval --bench shapes-pope`` asks
about. ``run_lmms`` runs lmms-eval's own model adapter (``llava_hf`` for a Llava model, see
``models.check.LMMS_ADAPTERS``) on a merged model folder; ``read_results`` turns its results JSON into numbers.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from prefgen.core.errors import PrefgenError
from prefgen.models.check import LMMS_ADAPTERS, LMMS_NO_ADAPTER

LMMS_VERSION = "0.7.3"  # the version the extra pins and the tests run
INSTALL = 'pip install -e ".[lmms]"'
POPE_SPLITS = ("random", "popular", "adversarial")
POPE_TAG = "shapes_pope"  # runs the three POPE tasks
SHAPES_TASKS = (*(f"shapes_pope_{split}" for split in POPE_SPLITS), "shapes_caption")
POPE_TOKENS, CAPTION_TOKENS = 8, 48  # as prefgen's shapes-pope and shapes-chair benches
# lmms-eval runs the entry point below; importing prefgen first arms its torchvision shim (``_compat``), without
# which lmms-eval fails to import on a CPU torch when the .venv start-up hook is not installed.
LAUNCH = "import prefgen; from lmms_eval.cli.dispatch import main; main()"
# model_args an adapter needs beyond the folder and device: qwen3_5 otherwise keeps only what follows "</think>",
# so a model that answers without thinking answers nothing
ADAPTER_ARGS = {"qwen3_5": ",enable_thinking=False"}


# ------------------------------------------------------------------------------------------------ the local task


def write_task(out: str | Path, n: int = 50, seed: int = 0) -> dict:
    """A local lmms-eval task folder on ``n`` held-out shapes scenes: ``shapes_pope_{random,popular,adversarial}``
    (tag ``shapes_pope``; the questions of ``prefgen eval --bench shapes-pope --n N --seed S``, asked with its
    short-answer suffix) and ``shapes_caption`` ("Describe the image.", CHAIR against the scene). Returns the task
    names with their row counts."""
    from prefgen.shapes.metrics import DESCRIBE_PROMPT, pope_questions
    from prefgen.shapes.pretrain.data import SHORT_ANSWER
    from prefgen.shapes.world import make_scenes, render

    if n < 1:
        raise PrefgenError("an lmms-eval task needs at least one scene")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scenes = make_scenes(n, seed, "eval")
    images = [_png(render(scene)) for scene in scenes]
    counts = {}
    for split in POPE_SPLITS:
        questions = pope_questions(scenes, split, seed)
        rows = [
            {
                "question_id": i,
                "question": q["question"],
                "answer": "yes" if q["label"] else "no",
                "image": images[q["scene"]],
                "category": split,
                "scene": q["scene"],
                "tier": q["tier"],
            }
            for i, q in enumerate(questions)
        ]
        name = f"shapes_pope_{split}"
        _write_parquet(out / f"{name}.parquet", rows)
        (out / f"{name}.yaml").write_text(_pope_yaml(name, SHORT_ANSWER), encoding="utf-8")
        counts[name] = len(rows)
    rows = [
        {
            "question_id": i,
            "question": DESCRIBE_PROMPT,
            "image": image,
            "scene": json.dumps(scene.to_dict()),
        }
        for i, (scene, image) in enumerate(zip(scenes, images))
    ]
    _write_parquet(out / "shapes_caption.parquet", rows)
    (out / "shapes_caption.yaml").write_text(_caption_yaml("shapes_caption"), encoding="utf-8")
    counts["shapes_caption"] = len(rows)
    return counts


def _png(image) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _write_parquet(path: Path, rows: list[dict]) -> None:
    """Rows with an ``image`` column typed as datasets' ``Image``, so lmms-eval's loader hands it a PIL image."""
    import pyarrow.parquet as pq
    from datasets import Dataset, Image

    # the table carries datasets' features in its metadata; written by pyarrow directly, without a progress bar
    pq.write_table(Dataset.from_list(rows).cast_column("image", Image()).data.table, path)


_GENERATION = "generation_kwargs:\n  max_new_tokens: {tokens}\n  temperature: 0\n  num_beams: 1\n  do_sample: false\n"
_HEADER = (
    "# Written by `prefgen shapes lmms-task`: {what}. Run with lmms-eval's --include_path pointing here.\n"
    "task: {name}\n"
    "dataset_path: parquet\n"
    "dataset_kwargs:\n  data_files:\n    test: {name}.parquet\n"
    "test_split: test\n"
    "output_type: generate_until\n"
    "doc_to_visual: !function lmms_eval.tasks.pope.utils.pope_doc_to_visual\n"
    "doc_to_text: !function lmms_eval.tasks.pope.utils.pope_doc_to_text\n"
)


def _metric(name: str, function: str, higher_is_better: bool = True) -> str:
    better = "true" if higher_is_better else "false"
    return f"  - metric: {name}\n    aggregation: !function {function}\n    higher_is_better: {better}\n"


def _pope_yaml(name: str, suffix: str) -> str:
    lmms = "lmms_eval.tasks.pope.utils.pope_aggregate_"
    own = "prefgen.eval.lmms_task."
    return (
        _HEADER.format(name=name, what="POPE on shapes scenes, scored by lmms-eval's POPE code and by prefgen's rule")
        + f"tag: {POPE_TAG}\n"
        + "doc_to_target: answer\n"
        + _GENERATION.format(tokens=POPE_TOKENS)
        + f"process_results: !function {own}pope_process_results\n"
        + "metric_list:\n"
        + "".join(_metric(f"pope_{m}", f"{lmms}{m}") for m in ("accuracy", "precision", "recall", "f1_score"))
        + _metric("pope_yes_ratio", f"{lmms}yes_ratio")
        + "".join(_metric(f"prefgen_pope_{m}", f"{own}prefgen_pope_{m}") for m in ("accuracy", "f1", "yes_ratio"))
        + 'lmms_eval_specific_kwargs:\n  default:\n    pre_prompt: ""\n'
        + f"    post_prompt: {json.dumps(suffix)}\n"
    )


def _caption_yaml(name: str) -> str:
    own = "prefgen.eval.lmms_task."
    return (
        _HEADER.format(name=name, what="captions of shapes scenes, scored with the shapes world's CHAIR")
        + "doc_to_target: scene\n"  # the ground truth (lmms-eval wants a target; CHAIR reads the scene from it)
        + _GENERATION.format(tokens=CAPTION_TOKENS)
        + f"process_results: !function {own}caption_process_results\n"
        + "metric_list:\n"
        + _metric("chair_s", f"{own}chair_s", higher_is_better=False)
        + _metric("chair_i", f"{own}chair_i", higher_is_better=False)
        + _metric("recall", f"{own}recall")
        + 'lmms_eval_specific_kwargs:\n  default:\n    pre_prompt: ""\n    post_prompt: ""\n'
    )


# ------------------------------------------------------------------------------------------------ running lmms-eval


def adapter_for(model: str | Path) -> str:
    """lmms-eval's model adapter for a model folder, from its config's ``model_type``."""
    path = Path(model) / "config.json"
    try:
        model_type = json.loads(path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as exc:
        raise PrefgenError(f"no model folder with a readable config.json at {model}: {exc}") from None
    adapter = LMMS_ADAPTERS.get(model_type)
    if adapter is None:
        why = LMMS_NO_ADAPTER.get(model_type) or f"adapters are known for {', '.join(sorted(LMMS_ADAPTERS))}"
        raise PrefgenError(f"lmms-eval cannot run model_type {model_type!r}: {why}")
    return adapter


def run_lmms(
    model: str | Path,
    tasks: Sequence[str],
    out: str | Path,
    include: str | Path | None = None,
    limit: int | None = None,
    device: str = "auto",
    adapter: str | None = None,
) -> dict:
    """Run lmms-eval's ``tasks`` on the merged model folder ``model`` in a subprocess; its results, samples and log
    go to ``out``. ``include``: a folder of task YAMLs (``write_task``); ``adapter``: lmms-eval's model name
    (default: ``adapter_for(model)``). Returns the numbers per task (``read_results``) with what was run."""
    from prefgen.models.loading import resolve_device

    adapter = _check(model, tasks, adapter)
    model, out = Path(model).resolve(), Path(out).resolve()
    device = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-c",
        LAUNCH,
        "--model",
        adapter,
        # transformers 5 refuses the adapters' default device_map="" (an empty string), so both are given
        "--model_args",
        f"pretrained={model},device={device},device_map={device}" + ADAPTER_ARGS.get(adapter, ""),
        "--tasks",
        ",".join(tasks),
        "--batch_size",
        "1",  # the llava_hf adapter supports no other
        "--output_path",
        str(out / "results"),
        "--log_samples",
    ]
    if include is not None:
        command += ["--include_path", str(Path(include).resolve())]
    if limit is not None:
        command += ["--limit", str(limit)]
    env = {**os.environ, "LMMS_EVAL_DATASETS_CACHE": str(out / "datasets-cache")}
    if include is not None and all(task in (*SHAPES_TASKS, POPE_TAG) for task in tasks):
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")  # local data only: never reach for the Hub
    log = out / "lmms-eval.log"
    with log.open("w", encoding="utf-8") as sink:
        done = subprocess.run(command, env=env, cwd=out, stdout=sink, stderr=subprocess.STDOUT)
    found = _results_file(out / "results")
    if done.returncode != 0 or found is None:
        raise PrefgenError(f"lmms-eval failed (exit {done.returncode}): {_last_error(log)}; its log: {log}")
    results = read_results(found)
    return {
        "lmms_eval": LMMS_VERSION,
        "adapter": adapter,
        "model": str(model),
        "tasks": list(tasks),
        "limit": limit,
        "results_file": str(found),
        "results": results,
    }


def read_results(path: str | Path) -> dict[str, dict[str, float]]:
    """``{task: {metric: value}}`` from an lmms-eval ``*_results.json``: the numbers only, without the filter
    suffix (``pope_f1_score,none`` -> ``pope_f1_score``) and without standard errors."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    results = {}
    for task, values in data.get("results", {}).items():
        numbers = {
            key.split(",")[0]: value
            for key, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and "_stderr" not in key
        }
        if numbers:
            results[task] = numbers
    if not results:
        raise PrefgenError(f"lmms-eval's results file {path} holds no metric: every task failed (see its log)")
    return results


RULE = (
    "lmms-eval's numbers, not the papers': pope_* score an answer by exact match (\"yes.\" is wrong) and "
    "pope_yes_ratio is the share of questions labelled yes; prefgen_pope_* read the same answers by POPE's rule; "
    "chair_* / recall: the shapes world's CHAIR on lmms-eval's captions"
)


def lmms_bench(
    model: str | Path,
    tasks: Sequence[str],
    n: int = 500,
    seed: int = 0,
    limit: int | None = None,
    device: str = "auto",
    samples: int = 10,
) -> dict:
    """``prefgen eval --bench lmms``: lmms-eval's ``tasks`` on ``model``, the shapes tasks written on ``n`` scenes
    first; the report keeps the numbers and the first ``samples`` answers of each task."""
    _check(model, tasks)  # before any task is written
    with tempfile.TemporaryDirectory(prefix="prefgen-lmms-") as tmp:
        include = _shapes_task_for(tasks, Path(tmp) / "task", n, seed)
        found = run_lmms(model, tasks, Path(tmp) / "run", include=include, limit=limit, device=device)
        answers = _samples(Path(found["results_file"]).parent, samples)
    scenes = {"scenes": n, "seed": seed} if include else {}
    results = found.pop("results")
    del found["results_file"]  # in a folder that is gone
    return {"bench": "lmms", **scenes, "rule": RULE, **found, "lmms": results, "samples": answers}


def lmms_evaluator(
    tasks: Sequence[str], n: int = 500, seed: int = 0, limit: int | None = None, device: str = "auto"
) -> Callable[[Path], dict]:
    """``evaluate(model_dir) -> {"lmms": {task: metrics}}`` for `prefgen train --rounds`; the shapes tasks
    (``shapes_pope``, ``shapes_caption``...) are written on ``n`` scenes first."""
    tasks = list(tasks)
    _require_lmms()  # before any training

    def run(model_dir: Path) -> dict:
        with tempfile.TemporaryDirectory(prefix="prefgen-lmms-") as tmp:
            include = _shapes_task_for(tasks, Path(tmp) / "task", n, seed)
            found = run_lmms(model_dir, tasks, Path(tmp) / "run", include=include, limit=limit, device=device)
        return {"lmms": found["results"]}

    return run


def round_measure(values: dict, setting, spec: str) -> Callable:
    """The ``lmms`` kind of `prefgen train --rounds --eval` (``eval.rounds.KINDS``): ``lmms:tasks=A+B[,limit=N]``
    on each round's model folder, recorded as ``lmms.<task>.<metric>``."""
    limit = values.get("limit")
    if limit is not None and not str(limit).isdigit():
        raise PrefgenError(f"--eval {spec}: limit must be a whole number, not {limit!r}")
    evaluate = lmms_evaluator(
        values["tasks"], setting.n, setting.seed, None if limit is None else int(limit), setting.device
    )
    return lambda model: {"lmms": {**evaluate(model.path)["lmms"], "spec": spec}}


def _shapes_task_for(tasks: Sequence[str], folder: Path, n: int, seed: int) -> Path | None:
    """The shapes task folder, written when any of ``tasks`` is one of its tasks, else None."""
    if not any(task in (*SHAPES_TASKS, POPE_TAG) for task in tasks):
        return None
    write_task(folder, n, seed)
    return folder


def _samples(folder: Path, count: int) -> dict[str, list[dict]]:
    """The first ``count`` prompts, answers and targets of each task, from lmms-eval's ``--log_samples`` files."""
    found = {}
    for path in sorted(folder.glob("*_samples_*.jsonl")):
        task = path.stem.split("_samples_", 1)[1]
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:count] if line.strip()]
        found[task] = [
            {"input": r.get("input"), "answer": r.get("filtered_resps"), "target": r.get("target")} for r in rows
        ]
    return found


def _check(model: str | Path, tasks: Sequence[str], adapter: str | None = None) -> str:
    """The adapter, once the tasks, the extra and the model are known to be there (one line each if not)."""
    if not tasks:
        raise PrefgenError("name at least one lmms-eval task (--tasks)")
    _require_lmms()
    return adapter or adapter_for(model)


def _require_lmms() -> None:
    import importlib.util

    if importlib.util.find_spec("lmms_eval") is None:
        raise PrefgenError(f"lmms-eval is not installed; it is an optional extra: {INSTALL}")


def _results_file(folder: Path) -> Path | None:
    found = sorted(folder.rglob("*_results.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _last_error(log: Path) -> str:
    """The last exception line of lmms-eval's log (it logs tracebacks and goes on), else its last ERROR line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(encoding="utf-8", errors="replace"))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    raised = [i for i, line in enumerate(lines) if re.match(r"^[\w.]*(Error|Exception)\b", line)]
    if raised:
        where = [m for line in lines[: raised[-1]] if (m := re.match(r'File "(.+)", line (\d+), in (\S+)', line))]
        place = f" (in {where[-1][3]}, {Path(where[-1][1]).name}:{where[-1][2]})" if where else ""
        return lines[raised[-1]][:300] + place
    logged = [line.split(" - ", 1)[-1] for line in lines if "| ERROR" in line]
    return (logged or lines or ["no output"])[-1][:300]
