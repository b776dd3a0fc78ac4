"""Can this machine have a model, without loading it? Local folders and files, the device asked for, and (offline)
whether a Hub model or an open_clip pretrained tag is already in the local caches.

``prefgen validate``, ``build --plan`` and the start of every build ask these questions, so that a recipe certain
to fail says so in one line before any stage runs (a CLIP that cannot load used to show up after hours of VLM
stages). Each function returns ``(key, message)`` pairs: the recipe key the problem is about (``path``,
``device``, ``id``, ``pretrained``) and one line saying what to do; an empty list means the model can be had.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefgen.core.config import normal_path
from prefgen.models.config import ClipConfig, VLMConfig
from prefgen.models.loading import not_available_offline

Finding = tuple[str, str]


def vlm_problems(config: VLMConfig, base_dir: str | Path | None) -> list[Finding]:
    """What stops ``VLM.load(config)`` here, found without reading weights."""
    found = device_problems(config.device)
    if config.path is not None:
        folder = _where(config.path, base_dir)
        if not folder.exists():
            found.append(("path", f"model path {folder} does not exist"))
        elif not (folder / "config.json").is_file():
            found.append(("path", f"model folder {folder} has no config.json (not a transformers model folder)"))
    elif _offline() and not _in_hub_cache(config.id, "config.json", config.revision):
        found.append(("id", str(not_available_offline(config.id, config.revision))))
    if config.engine == "vllm" and not found:
        from prefgen.models.vllm.support import vllm_problems

        source = str(_where(config.path, base_dir)) if config.path is not None else config.id
        found += [("engine", message) for message in vllm_problems(source, config.revision, config)]
    return found


def clip_problems(config: ClipConfig, base_dir: str | Path | None) -> list[Finding]:
    """What stops ``ClipScorer.load(config)`` here, found without reading weights."""
    found = device_problems(config.device)
    if config.path is not None:
        path = _where(config.path, base_dir)
        if path.is_dir() and not (path / "open_clip_config.json").is_file():
            found.append(("path", f"CLIP folder {path} has no open_clip_config.json (open_clip's local-dir layout)"))
        elif not path.exists():
            found.append(("path", f"CLIP checkpoint {path} does not exist"))
        return found
    problem = _pretrained_problem(config.model, config.pretrained)
    return found + ([("pretrained", problem)] if problem else [])


def device_problems(device: str) -> list[Finding]:
    """A device torch cannot see here (``auto`` and ``cpu`` always can)."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return [("device", f"device {device!r} was asked for, but torch sees no CUDA GPU; use `device: cpu`")]
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            return [("device", f"device {device!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")]
    if device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            return [("device", "device 'mps' was asked for, but torch sees no Apple GPU; use `device: cpu`")]
    return []


def _pretrained_problem(model: str, tag: str) -> str | None:
    """An unknown architecture or tag, or (offline) weights that are in no local cache."""
    import open_clip

    from prefgen.core.errors import PrefgenError
    from prefgen.models.clip import _check_known

    try:
        _check_known(model, tag)
    except PrefgenError as exc:
        return str(exc)
    if not _offline():
        return None
    cfg = open_clip.get_pretrained_cfg(model, tag) or {}
    if cfg.get("file") and Path(cfg["file"]).is_file():
        return None
    hub = cfg.get("hf_hub", "")
    if hub:
        repo, filename = os.path.split(hub)  # open_clip's reading: "org/name/file" or "org/name/" (default file)
        names = _weight_names(filename or "open_clip_pytorch_model.bin")
        if any(_in_hub_cache(repo, name, None) for name in names):
            return None
        return str(not_available_offline(repo, None, "CLIP model"))
    url = cfg.get("url", "")
    if url and (Path("~/.cache/clip").expanduser() / os.path.basename(url)).is_file():
        return None
    return f"CLIP weights {model}/{tag} are not available offline (download them on a machine with network)"


def _weight_names(filename: str) -> list[str]:
    """The file open_clip asks the Hub for and the safetensors files it tries first."""
    stem = filename.rsplit(".", 1)[0]
    return [f"{stem}.safetensors", "open_clip_model.safetensors", filename]


def _where(path: str, base_dir: str | Path | None) -> Path:
    """A recipe path as the loaders resolve it, written without ``..`` (``recipes/../data`` is ``data``)."""
    return normal_path(path, base_dir)


def _offline() -> bool:
    import huggingface_hub

    return huggingface_hub.is_offline_mode()


def _in_hub_cache(repo_id: str, filename: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename, revision=revision), str)
