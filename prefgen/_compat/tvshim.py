"""Make ``import torchvision`` work on a CPU-only torch.

The torchvision wheel the pinned stack resolves to (0.28.0) is a CUDA build: its ``_C.so`` links against
``libtorch_cuda.so``, fails to load on CPU torch, and torchvision's own ``_meta_registrations`` then dies with
``RuntimeError: operator torchvision::nms does not exist``. That takes open_clip, timm and the transformers image
processors down with it. None of them needs the compiled ops, only the op *schemas* that torchvision registers fakes
for, so defining ``torchvision::nms`` and ``torchvision::qnms`` before torchvision is imported is enough.

``install()`` puts a finder on ``sys.meta_path`` that runs the fix on the first ``import torchvision`` and never
imports torch itself, so installing it costs nothing. Where torchvision's ``_C.so`` loads (a matching CPU or CUDA
build), the fix loads it and defines nothing: the shim is then a no-op.

Two things arm it: ``import prefgen`` (also ``prefgen.models`` and ``prefgen.shapes``) calls ``install()``, and the
``prefgen-tvshim.pth`` start-up hook that ``python -m prefgen._compat.startup_hook install`` writes into
site-packages puts
a small stand-in finder on ``sys.meta_path`` in every interpreter, which runs this module's finder on the first
``import torchvision`` (see ``prefgen/_compat/startup_hook.py``). Both finders carry the ``prefgen_tvshim_finder``
marker,
and ``install()`` adds nothing when one is already there, so arming twice is harmless.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library = None  # the torch.library.Library must stay alive, or its definitions are dropped
_applied = False


def _compiled_ops_path(origin: str | None) -> Path | None:
    if origin is None:
        return None
    found = sorted(Path(origin).parent.glob("_C*.so")) + sorted(Path(origin).parent.glob("_C*.pyd"))
    return found[0] if found else None


def apply(torchvision_origin: str | None = None) -> bool:
    """Define the missing op schemas unless torchvision's compiled ops load; True when schemas were defined."""
    global _library, _applied
    if _applied:
        return _library is not None
    _applied = True
    import torch

    if _has_op(torch, "nms"):
        return False
    so_path = _compiled_ops_path(torchvision_origin)
    if so_path is not None:
        try:
            torch.ops.load_library(str(so_path))
        except (OSError, RuntimeError):
            pass  # a CUDA build on CPU torch: expected, fall through to the schemas
        if _has_op(torch, "nms"):
            return False
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _library.define(schema)
    return True


def _has_op(torch, name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


class _TorchvisionFinder:
    """Runs ``apply`` just before torchvision itself is imported, then lets the normal finders do the import."""

    prefgen_tvshim_finder = True  # what ``armed`` looks for; the start-up hook's finder carries it too

    def find_spec(self, name, path=None, target=None):
        if name != "torchvision" or _applied:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            apply(spec.origin)
        return None  # the regular machinery imports torchvision

    def __repr__(self) -> str:
        return f"{__name__}._TorchvisionFinder()"


def armed() -> bool:
    """Whether a shim finder (this module's, or the ``.pth`` start-up hook's) is on ``sys.meta_path``."""
    return any(getattr(finder, "prefgen_tvshim_finder", False) is True for finder in sys.meta_path)


def install() -> None:
    """Arrange for ``apply`` to run before torchvision is first imported; idempotent, imports nothing heavy.

    When the ``.pth`` start-up hook armed the interpreter, this adds nothing: that hook runs this module's
    ``apply`` (``prefgen._compat.tvshim`` once imported) when torchvision is first imported.
    """
    if armed():
        return
    if "torchvision" in sys.modules:
        return  # already imported (it worked, or it failed before we could help)
    sys.meta_path.insert(0, _TorchvisionFinder())
