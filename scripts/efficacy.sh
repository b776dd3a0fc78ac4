#!/usr/bin/env bash
# A loop measured against its ground-truth oracle on the shapes world, in one command:
#   bash scripts/efficacy.sh csr OUT [--all] [--eval-seed S]
# It draws the unlabelled pool like the evaluation (eval split, seed 7, a seed nothing else uses) if missing, runs
# the method and its oracle control for three rounds from the shipped VLM with the same pool and training, evaluates
# every round on held-out scenes (eval split, seed 0 unless --eval-seed), and writes OUT/summary.json with the
# method's share of the oracle's CHAIR_s gain. --all adds CSR's other variants (reference mode, the length-neutral
# search, best of eight by CSR's reward, by likelihood only). Every run is a `prefgen train --rounds` folder in OUT.
#
# Settings (checked on validation scenes, eval split seed 1, never on the reported ones): eight sampled descriptions
# at temperature 1.0 for best-of-k, LoRA DPO at lr 3e-4 for 3 epochs a round (docs/loops.md says what they gave).
# SENA's loop needs a weaker base than the shipped VLM (it answers 0.978 of its questions right) and is not here yet.
set -euo pipefail
cd "$(dirname "$0")/.."
LOOP=${1:?usage: bash scripts/efficacy.sh csr OUT [--all] [--eval-seed S]}
OUT=${2:?usage: bash scripts/efficacy.sh csr OUT [--all] [--eval-seed S]}
shift 2
ALL=0
SEED=0
while [ $# -gt 0 ]; do
  case "$1" in
    --all) ALL=1 ;;
    --eval-seed) SEED=$2; shift ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$LOOP" != csr ]; then
  echo "error: only the csr loop is measured this way yet (SENA needs a weaker base model; see docs/loops.md)" >&2
  exit 2
fi
source scripts/env.sh
P=.venv/bin/prefgen
POOL=data/shapes-pool7
[ -f "$POOL/manifest.jsonl" ] || $P shapes scenes --out "$POOL" -n 2000 --seed 7 --split eval
mkdir -p "$OUT"
COMMON=(--rounds 3 --model prefgen/shapes/checkpoints/shapes-vlm --eval shapes --eval-seed "$SEED" --quiet
        --set "source.path=../$POOL/manifest.jsonl" --set train.learning_rate=3e-4 --set train.epochs=3)
BOK=(--recipe recipes/shapes-csr-best-of-k.yaml --set stages.answer.n=8 --set stages.answer.temperature=1.0)
SEARCH=(--recipe recipes/shapes-csr.yaml)
scores() { echo --set "stages.select_pairs.chosen_score=$1" --set "stages.select_pairs.rejected_score=$1"; }
run() {  # NAME ARGS...: one rounds run, skipped when its third round is recorded (a rerun resumes the others)
  local name=$1; shift
  [ -f "$OUT/$name/round-3/model/lineage.json" ] && grep -q '"chair"' "$OUT/$name/round-3/model/lineage.json" && return
  echo "== $name" >&2
  $P train "${COMMON[@]}" "$@" --out "$OUT/$name"
}
# shellcheck disable=SC2046
run oracle "${BOK[@]}" $(scores answers_oracle)
run method "${SEARCH[@]}"
if [ "$ALL" = 1 ]; then
  run reference "${SEARCH[@]}" --set stages.csr_search.mode=reference
  run search-mean "${SEARCH[@]}" --set stages.csr_search.path_reward=mean
  run bok-csr "${BOK[@]}"
  # shellcheck disable=SC2046
  run bok-likelihood "${BOK[@]}" $(scores answers_logp)
fi
.venv/bin/python - "$OUT" <<'PY'
import json, subprocess, sys
from pathlib import Path

out = Path(sys.argv[1])
def last_and_base(run: Path) -> tuple[dict, dict]:
    text = subprocess.run([".venv/bin/prefgen", "rounds", str(run), "--metric", "chair.*", "--format", "json"],
                          capture_output=True, text=True, check=True).stdout
    rows = json.loads(text)
    return rows[0], rows[-1]
runs = {p.name: str(p) for p in sorted(out.iterdir()) if (p / "round-0.json").is_file()}
base, oracle = last_and_base(out / "oracle")
_, method = last_and_base(out / "method")
gain = lambda row: base["chair.chair_s"] - row["chair.chair_s"]
summary = {
    "loop": "csr", "metric": "chair.chair_s", "runs": runs,
    "base": base["chair.chair_s"], "oracle": oracle["chair.chair_s"], "method": method["chair.chair_s"],
    "share_of_oracle": gain(method) / gain(oracle) if gain(oracle) else None,
    "recall_base": base["chair.recall"], "recall_oracle": oracle["chair.recall"], "recall_method": method["chair.recall"],
    "chair_s_base": base["chair.chair_s"], "chair_s_method": method["chair.chair_s"],
    "others": {name: {"chair_s": row["chair.chair_s"], "recall": row["chair.recall"],
                      "share_of_oracle": gain(row) / gain(oracle) if gain(oracle) else None}
               for name in runs if name not in ("oracle", "method")
               for _, row in [last_and_base(out / name)]},
}
(out / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary, indent=2))
PY
