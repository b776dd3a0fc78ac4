"""How much memory each worker of a Ray build asks for: a worker process with its libraries loaded, plus the weights
of its stage's models when they sit in host memory. With the requests set, Ray places no more workers on a node than
its memory holds, and Ray Data's warning about workers that use more memory than they requested stays quiet.

The weights are counted from the model files' safetensors headers (parameters times the bytes of the dtype the model
loads in), without reading the weights; other weight files count by their size.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from prefgen.engine.progress import SOURCE

#: Memory of a worker process before any model: Python with torch, transformers and prefgen imported (measured at
#: about 0.4 GiB on CPU), with the quarter of headroom Ray asks for and more; with a GPU, its CUDA context on top.
WORKER_MEMORY, GPU_WORKER_MEMORY = 768 << 20, 2 << 30
#: Bytes per parameter of a safetensors dtype, and of the dtypes a recipe can load a model in.
_DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2}
_LOAD_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def memory_requests(runs, recipe, base: Path, workers: int, shards: int, cluster: dict[str, float]) -> dict[str, int]:
    """Bytes of memory each worker of each step asks Ray for, by step label (the source's under ``SOURCE``): a
    worker process, plus the weights of the stage's models when they are held in host memory (the stage reserves no
    GPU). A model stage holds ``workers`` actors (or its ``concurrency``), at most one per shard, for the whole build.
    When those would ask for more than nine tenths of the cluster's memory (beside one worker of every other step),
    every request shrinks in proportion: Ray would otherwise wait for ever for memory that no node has."""
    requests = {SOURCE: WORKER_MEMORY}
    held = 0
    for run in runs:
        res = run.params.resources
        on_gpu = bool(res and res.num_gpus)
        need = GPU_WORKER_MEMORY if on_gpu else WORKER_MEMORY
        for name in run.params.models:
            config = getattr(recipe.models, name, None)
            if config is not None and not (on_gpu and getattr(config, "device", "auto") != "cpu"):
                need += model_bytes(config, base) or 0
                need += engine_bytes(config)
        requests[run.params.label] = need
        if run.params.models:
            held += need * min((res.concurrency if res else None) or workers, shards)
    others = requests[SOURCE] + sum(requests[run.params.label] for run in runs if not run.params.models)
    available = 0.9 * cluster.get("memory", 0.0)
    if available and held + others > available:
        scale = available / (held + others)
        requests = {label: max(int(need * scale), 1) for label, need in requests.items()}
    return requests


#: What a worker holding vLLM's CPU build needs beside the weights: its engine process (measured at about 1 GiB with
#: torch and vLLM loaded), plus the KV cache the recipe gives it.
VLLM_ENGINE_MEMORY = 1 << 30


def engine_bytes(config) -> int:
    """Host memory the VLM's engine holds beyond the weights: vLLM's engine process and, on its CPU build, the KV
    cache (``models.vlm.vllm.kv_cache_gib``); nothing for the transformers engine."""
    if getattr(config, "engine", "hf") != "vllm":
        return 0
    from prefgen.models.vllm.support import on_cpu

    return VLLM_ENGINE_MEMORY + (int(config.vllm.kv_cache_gib * (1 << 30)) if on_cpu() else 0)


def model_bytes(config, base: Path) -> int | None:
    """The bytes a model's weights take once loaded, from the local files' safetensors headers (parameters times
    the bytes of the dtype they load in) or, for other weight files, their size; None when the weights are not on this
    machine (a Hub id not in the cache, an open_clip tag)."""
    from prefgen.core.config import resolve_path

    path = getattr(config, "path", None)
    if path:
        folder = resolve_path(path, base)
    elif getattr(config, "id", None):
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(config.id, revision=config.revision, local_files_only=True))
        except Exception:  # not in the cache (or no huggingface_hub): nothing to measure
            return None
    else:
        return None
    files = [folder] if folder.is_file() else sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if folder.is_dir() and not files:
        files = [f for pattern in ("*.bin", "*.pt", "*.pth") for f in sorted(folder.glob(pattern))]
    load = _LOAD_BYTES.get(getattr(config, "dtype", "float32"))  # open_clip loads in float32
    total = 0
    for file in files:
        if file.suffix != ".safetensors":
            total += file.stat().st_size
            continue
        with open(file, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        for name, tensor in header.items():
            if name != "__metadata__":
                stored = _DTYPE_BYTES.get(tensor["dtype"], 1)
                floating = tensor["dtype"].startswith(("F", "BF"))
                total += math.prod(tensor["shape"]) * (load if load and floating else stored)
    return total or None
