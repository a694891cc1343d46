#!/usr/bin/env bash
# FasterSeg's own result on real data, for this CPU (issue 15): a latency table for the deploy path
# (OpenVINO bf16 at 360x480), the search on CamVid's training sequences with epochs picked on the
# held-out one, the teacher and the distilled student trained with the CamVid recipe on seq_train,
# the two hand-designed baselines and the official student architecture trained the same way, then
# all of them compared on seq_val (held out) for accuracy and on the deploy path for latency.
#
#   bash benchmarks/camvid_cpu_chain.sh [OUT]   (default OUT=runs; every step resumes or is skipped when done)
#
# Where a committed genotype exists (benchmarks/results/camvid_cpu_search/*.json) the chain trains
# it instead of searching again, so it survives a new machine. Times on the 2-core development CPU:
# table 2 min, search about 2 h, each CamVid training 1-3 h (see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs}
FASTERSEG=${FASTERSEG:-.venv/bin/fasterseg}
PYTHON=${PYTHON:-.venv/bin/python}
DATA=camvid:../shared/data/camvid
SEARCH_CONFIG=configs/search/camvid_cpu.yaml
LUT="$OUT/lut/camvid_cpu_ov_bf16_360x480.json"
SEARCH="$OUT/camvid_cpu_search"
COMMITTED=benchmarks/results/camvid_cpu_search
mkdir -p "$OUT/lut"
source benchmarks/lib.sh

# 1. The latency table of the deploy path (resumable) and its validation.
"$FASTERSEG" lut build --backend openvino --precision bf16 --size 360x480 --threads 2 --space "$SEARCH_CONFIG" \
  --out "$LUT" --no-progress
[[ -f "$OUT/lut/validate_camvid_cpu_space/validate.json" ]] || "$FASTERSEG" lut validate --lut "$LUT" \
  --space "$SEARCH_CONFIG" --samples 30 --threads 2 --out-dir "$OUT/lut/validate_camvid_cpu_space" --no-progress

# 2. The search (resumable).
if [[ -f "$COMMITTED/student.json" ]]; then
  GENOTYPES=$COMMITTED
else
  if [[ ! -f "$SEARCH/summary.json" ]]; then
    if [[ -f "$SEARCH/config.yaml" ]]; then
      "$FASTERSEG" search --resume "$SEARCH" --threads 2
    else
      "$FASTERSEG" search --config "$SEARCH_CONFIG" --data "$DATA" --lut "$LUT" --name camvid_cpu_search \
        --out-dir "$OUT" --threads 2
    fi
  fi
  GENOTYPES=$SEARCH
fi

# 3. Teacher, then the student distilled from it, on seq_train (the recipe's default splits).
train camvid_cpu_teacher --genotype "$GENOTYPES/teacher.json" --config configs/train/camvid.yaml
train camvid_cpu_student --genotype "$GENOTYPES/student.json" --config configs/train/camvid.yaml \
  --teacher "$OUT/camvid_cpu_teacher/last.safetensors"

# 3b. The model to ship: the same student recipe on every labelled frame (train + val, so its own
# validation score is not held out; the seq_train run above is the held-out measure of this recipe),
# distilled from the seq_train teacher.
train camvid_cpu_final --genotype "$GENOTYPES/student.json" --config configs/train/camvid.yaml \
  --teacher "$OUT/camvid_cpu_teacher/last.safetensors" --set 'data.train_split=[train,val]' --set val_every=30

# 4. The baselines with the same recipe (the official student architecture's run is camvid_heldout.sh's).
for net in ddrnet23slim bisenetv2; do
  if [[ ! -f "$OUT/baselines/$net/metrics.json" ]]; then
    resume=(); [[ -f "$OUT/baselines/$net/checkpoint.pt" ]] && resume=(--resume)
    "$PYTHON" benchmarks/baselines/train_baseline.py --network "$net" --config configs/train/camvid.yaml \
      --out "$OUT/baselines/$net" --threads 2 "${resume[@]}"
  fi
done

# 5. Held-out accuracy and deploy-path latency side by side, with the Pareto plot.
"$PYTHON" benchmarks/baselines/compare.py --data "$DATA" --split seq_val --size 360x480 --threads 2 \
  --backend openvino:bf16 openvino:fp32 onnxruntime:fp32 --out "$OUT/compare_camvid_cpu" \
  --model "official=$OUT/camvid_heldout/last.safetensors" \
  --model "searched=$OUT/camvid_cpu_student/last.safetensors" \
  --model "ddrnet23slim=ddrnet23slim:$OUT/baselines/ddrnet23slim" \
  --model "bisenetv2=bisenetv2:$OUT/baselines/bisenetv2"
