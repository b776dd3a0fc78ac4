#!/usr/bin/env bash
# Sets everything up, then runs the main job: `prefgen build` on the offline default recipe (64 shapes-world scenes,
# the shipped shapes-world models), shows a few pairs, and scores them against the scenes' ground truth.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
P=.venv/bin/prefgen
$P build recipes/quickstart.yaml "$@"
$P show out/quickstart -n 3
$P eval --bench reward --store out/quickstart --ground-truth examples/shapes --out out/quickstart-reward.json
