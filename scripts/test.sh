#!/usr/bin/env bash
# Sets everything up (the pinned environment, Debian's Chromium for the browser tests), checks the code (ruff's lint
# and format) and runs the whole test suite, slow tests and browser tests included, on two workers.
# Extra arguments go to pytest (`bash scripts/test.sh tests/store -n 0` runs one folder in this process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/browser.sh
source scripts/env.sh
export PREFGEN_REQUIRE_BROWSER=1  # a missing browser fails the browser tests instead of skipping them
.venv/bin/ruff check --quiet prefgen tests bench scripts
.venv/bin/ruff format --check --quiet prefgen tests bench scripts
exec .venv/bin/python -m pytest -q -n 2 --dist loadgroup "$@"
