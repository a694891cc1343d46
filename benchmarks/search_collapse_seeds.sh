#!/usr/bin/env bash
# Issue 5's collapse ablation, repeated: the decoupled and the coupled regulariser with the same
# FPS window ([460, 560] on the demo's CPU table, the fastest window of search_fps_windows.sh),
# each searched with three more seeds, then every found student trained from scratch with three
# training seeds, so that neither one search nor one training decides the comparison.
# Seed 12345 (the default) is search_fps_windows.sh's faster_window / coupled_faster: give the
# same OUT_DIR to reuse them. Finished runs are skipped and interrupted ones resumed.
# Usage: benchmarks/search_collapse_seeds.sh [DATA_DIR] [LUT] [OUT_DIR]
set -euo pipefail
DATA=${1:-runs/demo/data}
LUT=${2:-runs/demo/lut.json}
OUT=${3:-runs/fps_windows}
FASTER=(--set "search.fps_min={student: 460.0}" --set "search.fps_max={student: 560.0}")
common=(--config configs/search/tiny.yaml --data "synth:$DATA" --lut "$LUT" --out-dir "$OUT" --threads 1
        --set "latency_size=[128, 256]" --set supernet.layers=8
        --set pretrain.epochs=5 --set pretrain.iters_per_epoch=20
        --set search.epochs=20 --set search.iters_per_epoch=20 --set search.val_limit=20)

source "$(dirname "$0")/search_experiment_steps.sh"

mkdir -p "$OUT"
SEEDS=(1 2 3)
pids=()
for s in "${SEEDS[@]}"; do
  seed=(--set "pretrain.seed=$s" --set "search.seed=$s")
  search "faster_window_s$s" "${seed[@]}" "${FASTER[@]}" & pids+=($!)
  search "coupled_faster_s$s" "${seed[@]}" --set latency_terms=coupled "${FASTER[@]}" & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done  # stops here (set -e) if a search failed
DECOUPLED=(faster_window) COUPLED=(coupled_faster)
for s in "${SEEDS[@]}"; do DECOUPLED+=("faster_window_s$s"); COUPLED+=("coupled_faster_s$s"); done
# Three training seeds per student; the unseeded run is training seed 0 (the recipe's default).
for run in "${DECOUPLED[@]}" "${COUPLED[@]}"; do
  train "$run" & a=$!; train "$run" 1 & b=$!; train "$run" 2 & c=$!
  wait $a; wait $b; wait $c
done
python benchmarks/fps_windows_table.py "$OUT" "${DECOUPLED[@]}"
python benchmarks/fps_windows_table.py "$OUT" "${COUPLED[@]}"
