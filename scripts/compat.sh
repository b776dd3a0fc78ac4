#!/usr/bin/env bash
# Does prefgen's data really train in the trainers people use? One command:
#   bash scripts/compat.sh OUT
# It builds a small quickstart version (recipes/quickstart.yaml, PREFGEN_COMPAT_IMAGES images, default 8), exports
# it for LLaMA-Factory and ms-swift, and in each trainer's own virtual environment (pinned, on torch 2.13.0 CPU,
# built once under ${PREFGEN_COMPAT_HOME:-~/.cache/prefgen/compat}) runs that trainer's dataset loading, compares
# every row with the store (its image's bytes, its question, chosen and rejected texts), and trains a few DPO steps
# on a tiny Qwen2-VL (scripts/compat/*_check.py). It writes OUT/compat.json:
#   {"llamafactory": {"version", "rows", "examples", "images", "loss_first", "loss_last"}, "swift": {...}}
# and a log per step in OUT. A failed check ends it with one line and exit status 1 (2: a usage error).
set -euo pipefail
# the whole script is one function, read before it runs: editing the file cannot change a run under way
main() {
  USAGE="usage: bash scripts/compat.sh OUT   (OUT: a new or empty folder for compat.json and the logs)"
  case "${1:-}" in
    -h | --help) echo "$USAGE"; exit 0 ;;
    "" | -*) echo "error: ${1:+unknown option $1; }$USAGE" >&2; exit 2 ;;
  esac
  if [ $# -ne 1 ]; then echo "error: one folder, not $#; $USAGE" >&2; exit 2; fi
  if [ -e "$1" ] && { [ ! -d "$1" ] || [ -n "$(ls -A "$1")" ]; }; then
    echo "error: $1 exists and is not an empty folder; $USAGE" >&2
    exit 2
  fi
  mkdir -p "$1"
  OUT=$(cd "$1" && pwd)
  cd "$(dirname "$0")/.."
  ROOT=$PWD
  [ -x .venv/bin/prefgen ] || fail "no .venv in $ROOT; run bash scripts/setup.sh first"
  source scripts/env.sh
  HOME_DIR=${PREFGEN_COMPAT_HOME:-$HOME/.cache/prefgen/compat}
  START=$SECONDS

  # Each trainer pins older libraries than prefgen (transformers, trl, datasets, peft): its own venv, as users run
  # it. ms-swift's qwen2_vl model needs qwen-vl-utils, which imports torchvision (0.28.0 is the build for torch 2.13).
  trainer_venv llamafactory "llamafactory==0.9.5"
  trainer_venv swift "ms-swift==4.6.0" "qwen-vl-utils==0.0.14" "torchvision==0.28.0"

  step "tiny Qwen2-VL" .venv/bin/prefgen models tiny --family qwen2_vl --out "$OUT/work/qwen2vl"
  step "quickstart build" .venv/bin/prefgen build recipes/quickstart.yaml --limit "${PREFGEN_COMPAT_IMAGES:-8}" \
    --out "$OUT/work/store"
  for format in llamafactory swift jsonl; do
    step "export $format" .venv/bin/prefgen export "$OUT/work/store" --format "$format" --out "$OUT/work/$format"
  done
  for trainer in llamafactory swift; do
    check "$trainer"
  done
  .venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
found = {t: json.loads((out / "work" / f"{t}-run" / "result.json").read_text()) for t in ("llamafactory", "swift")}
(out / "compat.json").write_text(json.dumps(found, indent=2) + "\n")
for trainer, r in found.items():
    print(f"{trainer} {r['version']}: {r['examples']} of {r['rows']} rows loaded, {r['images']} with their image, "
          f"loss {r['loss_first']:.4f} -> {r['loss_last']:.4f}")
PY
  echo "wrote $OUT/compat.json in $((SECONDS - START)) s"
}

fail() {
  echo "compat: $*" >&2
  exit 1
}

# step LABEL COMMAND...: run it with its output in OUT/LABEL.log; one line naming the log when it fails
step() {
  local label=$1 log
  shift
  log="$OUT/$(echo "$label" | tr ' ' '-').log"
  "$@" >"$log" 2>&1 || fail "$label failed (exit $?); see $log"
}

# trainer_venv NAME REQUIREMENT...: HOME_DIR/NAME-<pins digest> with torch 2.13.0 CPU and the requirements, built
# once, in place (a venv's scripts name its folder, so it cannot be renamed); .complete marks a finished build, so
# an interrupted one is started again
trainer_venv() {
  local name=$1 digest dir log site
  shift
  digest=$(printf '%s\n' "$(python3 --version)" "$@" | sha256sum | cut -c1-12)
  dir="$HOME_DIR/$name-$digest"
  eval "VENV_$name=\$dir"
  if [ ! -f "$dir/.complete" ]; then
    log="$OUT/$name-venv.log"
    echo "building the $name environment in $dir (once; log: $log)"
    rm -rf "$dir"
    mkdir -p "$HOME_DIR"
    {
      python3 -m venv "$dir" &&
        PIP_CONSTRAINT="$ROOT/constraints.txt" "$dir/bin/pip" install -q torch==2.13.0 &&
        PIP_CONSTRAINT="$ROOT/constraints.txt" "$dir/bin/pip" install -q "$@"
    } >"$log" 2>&1 || fail "installing $* failed; see $log"
    # torchaudio's newest wheel is compiled for an older torch and its libraries do not load on 2.13; LLaMA-Factory
    # imports it at start (for audio, never used here): without them it imports as a CPU build without extensions
    if ! "$dir/bin/python" -c "import torchaudio" >/dev/null 2>&1; then
      for lib in "$dir"/lib/python*/site-packages/torchaudio/lib/*.so; do
        [ -e "$lib" ] && mv "$lib" "$lib.disabled"
      done
    fi
    "$dir/bin/pip" freeze >"$dir/freeze.txt"
    touch "$dir/.complete"
  fi
  # prefgen's torchvision shim in the trainer's interpreters (the PyPI torchvision 0.28.0 is a CUDA build); written
  # at every run, since it names this checkout's shim file
  site=$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  .venv/bin/python -m prefgen._compat.startup_hook install --target "$site" >/dev/null
}

# check TRAINER: its driver in its venv, from OUT/work; the driver's one line when a check fails
check() {
  local trainer=$1 venv log line
  venv=$(eval "echo \$VENV_$trainer")
  log="$OUT/$trainer.log"
  mkdir -p "$OUT/work/$trainer-run"
  echo "checking $trainer ($(grep -iE "^(llamafactory|ms.swift)==" "$venv/freeze.txt" || true); log: $log)"
  if ! (cd "$OUT/work" && "$venv/bin/python" "$ROOT/scripts/compat/${trainer}_check.py" "$trainer" jsonl qwen2vl \
    "$trainer-run") >"$log" 2>&1; then
    line=$(grep -h "^compat check failed: " "$log" | tail -1 | cut -d' ' -f4- || true)
    fail "$trainer: ${line:-its check stopped with an error: $(tail -1 "$log")}; see $log"
  fi
}

main "$@"
