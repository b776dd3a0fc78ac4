"""Checkpoints both engines load: prefgen's models, as transformers 5 saves them, in the layout vLLM reads.

transformers 5 saves a CLIP or SigLIP vision tower inside LLaVA-style models (LLaVA, LLaVA-OneVision, Gemma 3) as
``vision_tower.embeddings...`` / ``vision_tower.encoder...``; the Hub's checkpoints (llava-hf and friends), and
vLLM's loader, name the same tensors ``vision_tower.vision_model.embeddings...``. transformers reads both. So a
folder whose tensors need it is re-keyed into the Hub's layout, once, in a copy beside prefgen's other caches (named
by the folder's path and its files' sizes and times, so an edited model gets a new copy); every other file is
linked, not copied. A folder that needs nothing (another tower, or already in the Hub's layout) is used as it is.
``hub_layout_keys`` is the mapping; ``write_hub_layout`` writes a folder in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from prefgen.core.fs import replace_folder

# A vision tower's own modules saved without the ``vision_model`` level the Hub's checkpoints have.
_BARE_TOWER = re.compile(r"^((?:model\.)?vision_tower\.)(embeddings|encoder|pre_layrnorm|post_layernorm|head)\.")


def hub_layout_keys(keys) -> dict[str, str]:
    """The keys that differ in the Hub's layout, old name -> new name."""
    return {key: _BARE_TOWER.sub(r"\1vision_model.\2.", key) for key in keys if _BARE_TOWER.match(key)}


def _weight_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


#: Vision towers whose Hub layout has the ``vision_model`` level; others (InternVL's, Qwen's) are saved as the Hub
#: has them and must not be touched.
TOWERS_WITH_VISION_MODEL = ("clip_vision_model", "siglip_vision_model")


def needs_rekey(folder: str | Path) -> bool:
    from safetensors import safe_open

    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if (config.get("vision_config") or {}).get("model_type") not in TOWERS_WITH_VISION_MODEL:
        return False
    for file in _weight_files(Path(folder)):
        with safe_open(str(file), "pt") as handle:
            if hub_layout_keys(handle.keys()):
                return True
    return False


def write_hub_layout(source: str | Path, target: str | Path, link: bool = False) -> Path:
    """``source`` with its tensors in the Hub's layout, written atomically to ``target``; other files are copied,
    or linked when ``link``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    source, target = Path(source), Path(target)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    renamed: dict[str, str] = {}
    for item in sorted(source.iterdir()):
        if item.suffix == ".safetensors":
            with safe_open(str(item), "pt") as handle:
                mapping = hub_layout_keys(handle.keys())
                tensors = {mapping.get(key, key): handle.get_tensor(key) for key in handle.keys()}
                metadata = handle.metadata() or {}
            save_file(tensors, str(staging / item.name), metadata={**metadata, "format": "pt"})
            renamed.update(mapping)
        elif item.name.endswith(".safetensors.index.json"):
            index = json.loads(item.read_text())
            index["weight_map"] = {renamed_key(k): v for k, v in index.get("weight_map", {}).items()}
            (staging / item.name).write_text(json.dumps(index, indent=2))
        elif item.is_file():
            if link:
                (staging / item.name).symlink_to(item.resolve())
            else:
                shutil.copy2(item, staging / item.name)
    replace_folder(staging, target)
    return target


def renamed_key(key: str) -> str:
    return hub_layout_keys([key]).get(key, key)


def vllm_ready_folder(folder: str | Path) -> str:
    """``folder`` itself when vLLM reads its tensors as they are, else its re-keyed copy (made once)."""
    folder = Path(folder).resolve()
    if not needs_rekey(folder):
        return str(folder)
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in folder.iterdir() if f.is_file())
    key = hashlib.sha256(repr((str(folder), files)).encode()).hexdigest()[:16]
    target = cache_home() / "vllm-layout" / f"{folder.name}-{key}"
    if not (target / "config.json").exists():
        write_hub_layout(folder, target, link=True)
    return str(target)


def cache_home() -> Path:
    """Where prefgen keeps what it derives from models: ``$PREFGEN_CACHE`` or ``~/.cache/prefgen``."""
    return Path(os.environ.get("PREFGEN_CACHE") or Path.home() / ".cache" / "prefgen")
