#!/usr/bin/env bash
# CamVid judged on a sequence training never sees (issue 14): the recipe of configs/train/camvid_sgd180.yaml
# against the recipe that made the first built-in model, both trained on seq_train (0001TP + 0016E5)
# and scored on seq_val (0006R0), then the first built-in model on seq_val for reference (it trained
# on those frames, so its score there is not a held-out one).
#
#   bash benchmarks/camvid_heldout.sh [OUT]        (default OUT=runs; resumes or skips finished runs)
#
# Times on the 2-core development CPU: the recipe about 80 min, the old recipe about 15 min (bf16).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs}
FASTERSEG=${FASTERSEG:-.venv/bin/fasterseg}
DATA=camvid:../shared/data/camvid
mkdir -p "$OUT"
ARCH="$OUT/official_student_arch.safetensors"
[[ -f "$ARCH" ]] || "$FASTERSEG" import-official --arch ../shared/reference/official/arch_1.pt --out "$ARCH"

source benchmarks/lib.sh
RECIPE=(--genotype "$ARCH" --config configs/train/camvid_sgd180.yaml)

# The recipe as configured: 180 epochs, scales 0.5-2, photometric jitter, OHEM without class weights.
train camvid_heldout "${RECIPE[@]}"
# The first built-in model's recipe (30 epochs, scales 0.75-1.5, no jitter, no class weights) on the same splits.
train camvid_heldout_old_recipe "${RECIPE[@]}" --set epochs=30 --set val_every=5 --set "data.scales=[0.75, 1.0, 1.25, 1.5]" \
  --set data.photometric.brightness=0 --set data.photometric.contrast=0 --set data.photometric.saturation=0 \
  --set data.photometric.hue=0 --set data.photometric.blur_prob=0 --set data.photometric.noise=0 \
  --set loss.class_weight=none

for run in camvid_heldout camvid_heldout_old_recipe; do
  "$FASTERSEG" eval --model "$OUT/$run/best.safetensors" --data "$DATA" --split seq_val --json "$OUT/$run/seq_val.json"
done
# the first built-in model, as committed before this experiment
FIRST="$OUT/builtin_v1_camvid_student.safetensors"
[[ -f "$FIRST" ]] || git show 80099ae:src/fasterseg/models/camvid_student.safetensors > "$FIRST"
"$FASTERSEG" eval --model "$FIRST" --data "$DATA" --split seq_val --json "$OUT/builtin_v1_seq_val.json"
