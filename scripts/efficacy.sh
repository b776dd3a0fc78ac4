#!/usr/bin/env bash
# A loop measured against its ground-truth oracle on the shapes world, in one command:
#   bash scripts/efficacy.sh csr|sena OUT [--all] [--eval-seed S] [--runs NAME,...] [--signals-only]
# It draws the unlabelled pool like the evaluation (eval split, seed 7, a seed nothing else uses) if missing, runs
# the method and its oracle control for three rounds from the same base with the same pool and training, evaluates
# every round on held-out scenes (eval split, seed 0 unless --eval-seed), and writes OUT/summary.json with the
# method's share of the oracle's gain (scripts/efficacy_summary.py). Every run is a `prefgen train --rounds` folder
# in OUT (its log beside it, OUT/NAME.log); runs go two at a time, one torch thread each, and a rerun skips the runs
# whose third round is recorded.
#
# `guarded` is each loop with the label-free guards of issue 33 (docs/loops.md, "Guards"): the round gate on 200
# held-out unlabelled images (data/shapes-gate11: PNG files only, drawn like the evaluation with seed 11) with the
# limits below, pair filters, and for CSR the centred sentence reward, for SENA rejections from one corruption per
# row drawn from two that err in opposite directions; both with the SFT term. --signals-only records the gate's
# signals without its limits (how the limits were chosen, on validation scenes: --eval-seed 1). --runs runs only
# the named runs (and writes no summary).
#
#   csr:  base the shipped VLM; headline CHAIR_s. method = csr_search in paper mode; oracle = best of eight sampled
#         descriptions by ground truth. --all adds reference mode, the length-neutral search, best of eight by CSR's
#         reward and by likelihood alone (CHAIR only, the headline, to keep each run short).
#   sena: base the early VLM (shapes-vlm-early: the shipped VLM's own pretraining run after 2,000 steps, weaker at
#         counting); headline the QA kind the oracle's pairs train most. method = SENA with ICA; oracle = the ground
#         truth as chosen; both with an SFT term on the chosen answer. --all adds SENA without ICA, the plain answer
#         as chosen, and SENA without the SFT term (the paper's training).
#
# Settings (checked on validation scenes, eval split seed 1, never on the reported ones; docs/loops.md): eight
# sampled descriptions at temperature 1.0 for best-of-k, LoRA DPO at lr 3e-4 for 3 epochs a round; for SENA, the
# SFT term.
set -euo pipefail
# the whole script is one function, read before it runs: editing the file cannot change a run under way
main() {
  cd "$(dirname "$0")/.."
  USAGE="usage: bash scripts/efficacy.sh csr|sena OUT [--all] [--eval-seed S] [--runs NAME,...] [--signals-only]"
  LOOP=${1:?$USAGE}
  OUT=${2:?$USAGE}
  shift 2
  ALL=0
  SEED=0
  ONLY=""
  SIGNALS_ONLY=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --all) ALL=1 ;;
      --eval-seed) SEED=${2:?$USAGE}; shift ;;
      --runs) ONLY=",${2:?$USAGE},"; shift ;;
      --signals-only) SIGNALS_ONLY=1 ;;
      *) echo "error: unknown option $1; $USAGE" >&2; exit 2 ;;
    esac
    shift
  done
  case "$LOOP" in
    csr|sena) ;;
    *) echo "error: unknown loop $LOOP; $USAGE" >&2; exit 2 ;;
  esac
  source scripts/env.sh
  P=.venv/bin/prefgen
  POOL=data/shapes-pool7
  [ -f "$POOL/manifest.jsonl" ] || $P shapes scenes --out "$POOL" -n 2000 --seed 7 --split eval
  GATE=data/shapes-gate11  # held-out images for the round gate: the PNG files alone, no manifest, no ground truth
  if [ ! -f "$GATE/scene-00199.png" ]; then
    $P shapes scenes --out "$GATE.scenes" -n 200 --seed 11 --split eval
    mkdir -p "$GATE" && cp "$GATE.scenes"/*.png "$GATE"/ && rm -rf "$GATE.scenes"
  fi
  mkdir -p "$OUT"
  # the gate's limits, chosen on validation scenes (eval split, seed 1; docs/loops.md "Guards")
  CSR_GATE="max_base_logprob_drop=0.095"
  SENA_GATE="max_base_logprob_drop=0.02"
  COMMON=(--rounds 3 --eval-seed "$SEED" --quiet
          --set "source.path=../$POOL/manifest.jsonl" --set train.learning_rate=3e-4 --set train.epochs=3)
  PIDS=()
  run() {  # NAME ARGS...: start one rounds run (one torch thread), skipped when its third round is recorded
    local name=$1; shift
    [ -z "$ONLY" ] || [[ "$ONLY" == *",$name,"* ]] || return 0
    [ -f "$OUT/$name/round-3/model/lineage.json" ] && grep -q '"eval"' "$OUT/$name/round-3/model/lineage.json" && return
    echo "== $name (log: $OUT/$name.log)" >&2
    OMP_NUM_THREADS=1 $P train "${COMMON[@]}" "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1 &
    PIDS+=("$!:$name")
  }
  finish() {  # wait for the runs started since the last call; runs share the cores two at a time (a rerun resumes)
    local failed=() item
    for item in "${PIDS[@]}"; do wait "${item%%:*}" || failed+=("${item#*:}"); done
    PIDS=()
    if [ ${#failed[@]} -gt 0 ]; then
      echo "error: ${failed[*]} failed; see $OUT/<name>.log" >&2
      exit 1
    fi
  }
  gate() {  # LIMITS: the round gate's --eval spec, with its limits unless --signals-only
    local spec="gate:images=$GATE,limit=200"
    [ "$SIGNALS_ONLY" = 1 ] || [ -z "$1" ] || spec="$spec,$1"
    echo "$spec"
  }
  if [ "$LOOP" = csr ]; then
    CSR=(--model prefgen/shapes/checkpoints/shapes-vlm)
    BOK=("${CSR[@]}" --recipe recipes/shapes-csr-best-of-k.yaml --set stages.answer.n=8 --set stages.answer.temperature=1.0)
    SEARCH=("${CSR[@]}" --recipe recipes/shapes-csr.yaml)
    scores() { echo --set "stages.select_pairs.chosen_score=$1" --set "stages.select_pairs.rejected_score=$1"; }
    # shellcheck disable=SC2046
    run oracle --eval shapes "${BOK[@]}" $(scores answers_oracle)
    # the paper's loop: the shipped recipe's guards off (so too for the search's controls under --all)
    PAPER=(--set stages.csr_search.clip_reward=clamped --set stages.select_pairs.drop_count_disagreement=false
           --set stages.select_pairs.max_length_share=null --set stages.select_pairs.max_word_run=null
           --set train.sft_weight=0.0)
    run method --eval shapes "${SEARCH[@]}" "${PAPER[@]}"
    # the guarded search, as the recipe ships: sentence rewards centred on the image's own mean cosine, the SFT
    # term, pairs that disagree on a count or differ mostly in length dropped (a CLIP reward can judge neither),
    # and the round gate
    run guarded --eval shapes --eval "$(gate "$CSR_GATE")" "${SEARCH[@]}"
    finish
    if [ "$ALL" = 1 ]; then
      run bok-csr --eval shapes-chair "${BOK[@]}"
      run reference --eval shapes-chair "${SEARCH[@]}" "${PAPER[@]}" --set stages.csr_search.mode=reference
      finish
      run search-mean --eval shapes-chair "${SEARCH[@]}" "${PAPER[@]}" --set stages.csr_search.path_reward=mean
      # shellcheck disable=SC2046
      run bok-likelihood --eval shapes-chair "${BOK[@]}" $(scores answers_logp)
      finish
    fi
  else
    # an SFT term on the chosen answer (weight 1.0): without it even the oracle unlearns counting (docs/loops.md)
    SENA=(--model prefgen/shapes/checkpoints/shapes-vlm-early --recipe recipes/shapes-sena.yaml --eval shapes
          --set train.sft_weight=1.0)
    # SENA's own loop and its controls: the shipped recipe's guards off
    OWN=(--set stages.corrupt.choose=all --set 'stages.corrupt.ops=[{op: diffusion_noise, t: 600, space: normalized}]'
         --set stages.select_pairs.max_word_run=null)
    run oracle "${SENA[@]}" "${OWN[@]}" --set stages.select_pairs.chosen=oracle_answer
    run method "${SENA[@]}" "${OWN[@]}"
    # the guarded loop, as the recipe ships: each row's rejected answer comes from one corruption drawn from two
    # that move the VLM's counts in opposite directions (noise adds objects, a crop removes them), degenerate chosen
    # answers dropped, and the round gate
    run guarded "${SENA[@]}" --eval "$(gate "$SENA_GATE")"
    finish
    if [ "$ALL" = 1 ]; then
      run no-ica "${SENA[@]}" "${OWN[@]}" --set train.ica_weight=0
      run plain "${SENA[@]}" "${OWN[@]}" --set stages.select_pairs.chosen=answer
      finish
      run no-sft "${SENA[@]}" "${OWN[@]}" --set train.sft_weight=0
      finish
    fi
  fi
  [ -n "$ONLY" ] || .venv/bin/python scripts/efficacy_summary.py "$OUT" --loop "$LOOP"
}
main "$@"
