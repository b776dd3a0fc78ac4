#!/usr/bin/env bash
# Sets everything up, then runs the main job on the offline default recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
# Until the build runner lands, the furthest real step: validate, read the source, show the plan.
exec .venv/bin/prefgen build recipes/quickstart.yaml --plan "$@"
