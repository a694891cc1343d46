#!/usr/bin/env bash
# Fine-tuning against training from scratch (issue 19). The official student's genotype is trained on
# the synthetic Cityscapes-like scenes (`fasterseg data synth`, 19 classes), then fine-tuned on CamVid
# seq_train (0001TP + 0016E5) with `train --init` (classes matched by name, the others fresh), against
# the same genotype trained from scratch on seq_train with the same short schedule. Both are scored on
# seq_val (0006R0, a sequence neither saw), from their last epoch (the choice of epoch is not made on
# the frames they are scored on).
#
#   bash benchmarks/finetune_camvid.sh [OUT] [EPOCHS]     (defaults: runs, 15; resumes or skips finished runs)
#
# Times on the 2-core development CPU (bf16): synthetic pretraining about 8 min, each CamVid run about 7 min.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs}
EPOCHS=${2:-15}
FASTERSEG=${FASTERSEG:-.venv/bin/fasterseg}
DATA=camvid:../shared/data/camvid
mkdir -p "$OUT"
ARCH="$OUT/official_student_arch.safetensors"
[[ -f "$ARCH" ]] || "$FASTERSEG" import-official --arch ../shared/reference/official/arch_1.pt --out "$ARCH"
SYNTH="$OUT/synth_data"
[[ -d "$SYNTH/leftImg8bit" ]] || "$FASTERSEG" data synth --out "$SYNTH" --train 160 --val 40 --size 256x512

source benchmarks/lib.sh

train synth_student --genotype "$ARCH" --config configs/train/synth.yaml --data "synth:$SYNTH" \
  --set epochs=20 --set val_every=5 --set data.workers=0
SHORT=(--config configs/train/camvid_sgd180.yaml --set "epochs=$EPOCHS" --set val_every=5)
train camvid_finetuned --init "$OUT/synth_student/last.safetensors" "${SHORT[@]}"
train camvid_scratch --genotype "$ARCH" "${SHORT[@]}"
for run in camvid_finetuned camvid_scratch; do
  "$FASTERSEG" eval --model "$OUT/$run/last.safetensors" --data "$DATA" --split seq_val --json "$OUT/$run/seq_val.json"
done
