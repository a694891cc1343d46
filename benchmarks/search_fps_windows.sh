#!/usr/bin/env bash
# Issue 5's experiment: two searches with different FPS windows, and the coupled regulariser,
# then each found student trained from scratch with one recipe so their mIoU can be compared.
# Uses the demo's synthetic data and CPU latency table (run `fasterseg demo` first, or pass them).
# The six searches run side by side, one thread each; then the six trainings likewise.
# Finished runs are skipped and interrupted ones resumed, so the script can simply be run again.
# Usage: benchmarks/search_fps_windows.sh [DATA_DIR] [LUT] [OUT_DIR]
set -euo pipefail
DATA=${1:-runs/demo/data}
LUT=${2:-runs/demo/lut.json}
OUT=${3:-runs/fps_windows}
# The coupled regulariser runs with the two fastest windows.
source "$(dirname "$0")/cpu_table_search_settings.sh"
source "$(dirname "$0")/search_experiment_steps.sh"

mkdir -p "$OUT"
RUNS=(slow_window mid_window fast_window faster_window coupled coupled_faster)
search slow_window "${SLOW[@]}" & search mid_window "${MID[@]}" & search fast_window "${FAST[@]}" &
search faster_window "${FASTER[@]}" & search coupled --set latency_terms=coupled "${FAST[@]}" &
search coupled_faster --set latency_terms=coupled "${FASTER[@]}" & wait
for run in "${RUNS[@]}"; do train "$run" & done; wait
python benchmarks/fps_windows_table.py "$OUT" "${RUNS[@]}"
for run in "${RUNS[@]}"; do
  echo "== $run"; cat "$OUT/$run/summary.json"
  cut -d, -f1,18-22 "$OUT/$run/search/log.csv"
  grep -h '"best_val_mIoU"' "$OUT/train_$run/metrics.json" 2>/dev/null || true
done
