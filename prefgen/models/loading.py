"""Where model weights come from, on which device, in which dtype; and one-line errors when they cannot be had."""

from __future__ import annotations

from pathlib import Path

from prefgen.core.config import resolve_path
from prefgen.core.errors import PrefgenError


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks cuda, then mps, then cpu."""
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise PrefgenError(f"device {device!r} was asked for, but torch sees no CUDA GPU; use `device: cpu`")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str):
    """``auto`` keeps the checkpoint's dtype (what transformers calls ``dtype="auto"``)."""
    import torch

    return "auto" if dtype == "auto" else getattr(torch, dtype)


def model_source(id: str | None, path: str | None, base_dir: str | Path | None) -> tuple[str, bool]:
    """(what ``from_pretrained`` gets, whether it is a local folder); relative paths resolve from ``base_dir``."""
    if (id is None) == (path is None):
        raise PrefgenError("give exactly one of a Hub `id` or a local `path` for the model")
    if path is None:
        return id, False
    folder = resolve_path(path, base_dir)
    if not folder.exists():
        raise PrefgenError(f"model path {folder} does not exist")
    return str(folder), True


def not_available_offline(id: str, revision: str | None, what: str = "model") -> PrefgenError:
    rev = f" --revision {revision}" if revision else ""
    return PrefgenError(
        f"{what} {id!r}{' at revision ' + revision if revision else ''} is not available offline: run "
        f"`hf download {id}{rev}` on a machine with network and copy the Hugging Face cache here, "
        f"or set `path:` to a local folder holding the {what}"
    )
