#!/usr/bin/env bash
# Sets everything up, then runs the main job: `prefgen build` on an offline recipe, and shows a few pairs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
P=.venv/bin/prefgen
# The tiny random models are built offline once (seconds); they exercise the whole pipeline, not quality.
[ -f build/tiny/llava/config.json ] || $P models tiny --family llava --out build/tiny/llava --force
[ -f build/tiny/clip/open_clip_config.json ] || $P models tiny --clip --out build/tiny/clip --force
$P build recipes/tiny/sena.yaml "$@"
$P show out/tiny-sena -n 3
