#!/usr/bin/env bash
# Issue 5's collapse ablation, repeated: the decoupled and the coupled regulariser with the same
# FPS window of search_fps_windows.sh ("faster": [460, 560], or "fast": [380, 440], on the demo's
# CPU table), each searched with more seeds (SEEDS, default "1 2 3"), then every found student
# trained from scratch with three training seeds, so that neither one search nor one training
# decides the comparison. Seed 12345 (the default) is search_fps_windows.sh's own pair of runs
# (faster_window / coupled_faster, or fast_window / coupled): give the same OUT_DIR to reuse them.
# Finished runs are skipped and interrupted ones resumed.
# Usage: [SEEDS="1 2 3"] benchmarks/search_collapse_seeds.sh [DATA_DIR] [LUT] [OUT_DIR] [faster|fast]
set -euo pipefail
DATA=${1:-runs/demo/data}
LUT=${2:-runs/demo/lut.json}
OUT=${3:-runs/fps_windows}
source "$(dirname "$0")/cpu_table_search_settings.sh"
case ${4:-faster} in
  faster) FPS_WINDOW=("${FASTER[@]}") BASE_DECOUPLED=faster_window BASE_COUPLED=coupled_faster ;;
  fast) FPS_WINDOW=("${FAST[@]}") BASE_DECOUPLED=fast_window BASE_COUPLED=coupled ;;
  *) echo "window must be 'faster' or 'fast', not '$4'" >&2; exit 2 ;;
esac
read -r -a SEEDS <<<"${SEEDS:-1 2 3}"
source "$(dirname "$0")/search_experiment_steps.sh"

mkdir -p "$OUT"
pids=()
for s in "${SEEDS[@]}"; do
  seed=(--set "pretrain.seed=$s" --set "search.seed=$s")
  search "${BASE_DECOUPLED}_s$s" "${seed[@]}" "${FPS_WINDOW[@]}" & pids+=($!)
  search "${BASE_COUPLED}_s$s" "${seed[@]}" --set latency_terms=coupled "${FPS_WINDOW[@]}" & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done  # stops here (set -e) if a search failed
DECOUPLED=("$BASE_DECOUPLED") COUPLED=("$BASE_COUPLED")
for s in "${SEEDS[@]}"; do DECOUPLED+=("${BASE_DECOUPLED}_s$s"); COUPLED+=("${BASE_COUPLED}_s$s"); done
# Three training seeds per student; the unseeded run is training seed 0 (the recipe's default).
for run in "${DECOUPLED[@]}" "${COUPLED[@]}"; do
  train "$run" & a=$!; train "$run" 1 & b=$!; train "$run" 2 & c=$!
  wait $a; wait $b; wait $c
done
python benchmarks/fps_windows_table.py "$OUT" "${DECOUPLED[@]}"
python benchmarks/fps_windows_table.py "$OUT" "${COUPLED[@]}"
