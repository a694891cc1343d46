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
# Windows in table FPS at 128x256 for an 8-layer, F=4 space on the demo's table: random students
# of this space span about 226-414 FPS (median 305; all skips at width 1/2: 546). [300, 360] was
# meant to be near what accuracy alone picks (it picked ~366: the latency term cannot slow a
# network down); [340, 385], [380, 440] and [460, 560] need the latency term to push. The
# coupled regulariser runs with the two fastest windows.
SLOW=(--set "search.fps_min={student: 300.0}" --set "search.fps_max={student: 360.0}")
MID=(--set "search.fps_min={student: 340.0}" --set "search.fps_max={student: 385.0}")
FAST=(--set "search.fps_min={student: 380.0}" --set "search.fps_max={student: 440.0}")
FASTER=(--set "search.fps_min={student: 460.0}" --set "search.fps_max={student: 560.0}")
common=(--config configs/search/tiny.yaml --data "synth:$DATA" --lut "$LUT" --out-dir "$OUT" --threads 1
        --set "latency_size=[128, 256]" --set supernet.layers=8
        --set pretrain.epochs=5 --set pretrain.iters_per_epoch=20
        --set search.epochs=20 --set search.iters_per_epoch=20 --set search.val_limit=20)

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
