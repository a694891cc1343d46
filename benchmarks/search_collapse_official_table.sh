#!/usr/bin/env bash
# Issue 5's collapse ablation where scales matter: the decoupled and the coupled latency terms
# with the same window, judged at 1024x2048 against the official 1080Ti/TensorRT table, on an
# 8-layer F=12 supernet with the paper's widths, trained on the demo's synthetic scenes at small
# crops (the table, not the crop, sets the latency). On the CPU table of search_fps_windows.sh,
# op latency at 128x256 hardly depends on the scale, so paths cannot collapse there; here an
# early down-sampling is worth up to ~40 FPS. The student (stem and head 8/12) spans about
# 150-250 FPS here and accuracy alone picks ~175-195, so the window [200, 240] needs the push.
# Both searches run side by side, one thread each; finished runs are skipped.
# A third search, `split` (RUNS="split", or with the others), weighs the decoupled terms 1 : 0.5 : 1 (ops, down-sampling,
# widths: latency_split) instead of the paper's 1 : 497 : 2: at 8 layers the derivation fixes the 1/32 branch's path,
# so the term's push on the down-sampling cannot move a 1/8+1/32 student (issue 30; benchmarks/latency_leverage.py).
# Usage: [RUNS="decoupled coupled split"] benchmarks/search_collapse_official_table.sh [DATA_DIR] [OUT_DIR]
set -euo pipefail
DATA=${1:-runs/demo/data}
OUT=${2:-runs/fps_windows_official}
common=(--config configs/search/cityscapes.yaml --data "synth:$DATA" --out-dir "$OUT" --threads 1 --set device=cpu
        --set supernet.layers=8
        --set pretrain.epochs=4 --set pretrain.iters_per_epoch=20 --set pretrain.batch_size=2
        --set "pretrain.crop=[64, 128]" --set pretrain.downsample=1
        --set search.epochs=16 --set search.iters_per_epoch=20 --set "search.crop=[64, 128]"
        --set search.downsample=1 --set search.val_limit=20
        --set "search.fps_min={student: 200.0}" --set "search.fps_max={student: 240.0}")

source "$(dirname "$0")/search_experiment_steps.sh"

read -r -a RUNS <<<"${RUNS:-decoupled coupled}"
declare -A EXTRA=([decoupled]="" [coupled]="--set latency_terms=coupled" [split]="--set latency_split=[1,0.5,1]")
# Waits for every background job of a stage and names each that failed (a bare `wait` reports none of them), so a
# failed search stops the script before its training and table instead of showing only in its log.
wait_for() {
  local stage=$1; shift
  local failed=() i=0 pid
  for pid in "${PIDS[@]}"; do
    wait "$pid" || failed+=("${RUNS[$i]}")
    i=$((i + 1))
  done
  if ((${#failed[@]})); then echo "$stage failed: ${failed[*]} (their logs: $OUT/<run>.log)" >&2; exit 1; fi
}

mkdir -p "$OUT"
for run in "${RUNS[@]}"; do
  [[ -v "EXTRA[$run]" ]] || { echo "unknown run '$run' (decoupled, coupled or split)" >&2; exit 2; }
done
PIDS=()
for run in "${RUNS[@]}"; do
  # shellcheck disable=SC2086  # EXTRA's entries are word lists
  search "$run" ${EXTRA[$run]} &
  PIDS+=($!)
done
wait_for search
PIDS=()
for run in "${RUNS[@]}"; do train "$run" & PIDS+=($!); done
wait_for training
python benchmarks/fps_windows_table.py "$OUT" "${RUNS[@]}"
