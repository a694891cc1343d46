#!/usr/bin/env bash
# Issue 5's experiment: two searches with different FPS windows, and the coupled regulariser.
# Uses the demo's synthetic data and CPU latency table (run `fasterseg demo` first, or pass them).
# Usage: benchmarks/search_fps_windows.sh [DATA_DIR] [LUT] [OUT_DIR]
set -euo pipefail
DATA=${1:-runs/demo/data}
LUT=${2:-runs/demo/lut.json}
OUT=${3:-runs/fps_windows}
common=(--config configs/search/tiny.yaml --data "synth:$DATA" --lut "$LUT" --out-dir "$OUT" --threads 1
        --set "latency_size=[128, 256]" --set search.epochs=8 --set search.iters_per_epoch=15
        --set pretrain.epochs=3 --set pretrain.iters_per_epoch=15 --set search.val_limit=20)
fasterseg search "${common[@]}" --name slow_window --set "search.fps_min={student: 250.0}" --set "search.fps_max={student: 350.0}"
fasterseg search "${common[@]}" --name fast_window --set "search.fps_min={student: 450.0}" --set "search.fps_max={student: 700.0}"
fasterseg search "${common[@]}" --name coupled --set latency_terms=coupled --set "search.fps_min={student: 450.0}" --set "search.fps_max={student: 700.0}"
for run in slow_window fast_window coupled; do
  echo "== $run"; cat "$OUT/$run/summary.json"
  tail -n 3 "$OUT/$run/search/log.csv"
done
