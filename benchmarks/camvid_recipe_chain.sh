#!/usr/bin/env bash
# CamVid accuracy with the from-scratch peers' budget (issue 31): the held-out study of their
# choices against ours on the built-in student's genotype (seq_train -> seq_val), in runs that
# outlast a working session and its machine.
#
#   bash benchmarks/camvid_recipe_chain.sh [OUT [STEP ...]]   (default OUT=runs, every step in order)
#
# Steps (each resumes its run folder, or continues from its committed compact checkpoint on a new
# machine, or is skipped when finished):
#   curve   configs/train/camvid_scratch.yaml, 800 epochs, scored every 20: the learning curve
#           (stopped at epoch 140: it scored as noaux does at equal epochs, at 1.7x the cost; its
#           compact checkpoint was dropped, so on a new machine this step starts over)
#   noaux   the same without the auxiliary heads (1.7x the images/s on a CPU): the learning curve
#   base    the study's short arm: noaux's recipe over 100 epochs (its schedule ends there), seed 0
#   bright  the same with wider photometric jitter (brightness and contrast 0.5): seq_val's frames
#           are brighter than the training frames' jitter reaches (docs/benchmarks.md)
#   pack    copy each unfinished run's compact checkpoint (RUN/compact.safetensors, written every
#           10 epochs, under 10 MB) and its per-epoch log to benchmarks/results/camvid_recipe/ for
#           committing, so the next session continues there
#
# Two steps side by side, one thread each, use two cores better than one run on both:
#   THREADS=1 bash benchmarks/camvid_recipe_chain.sh runs curve & THREADS=1 bash benchmarks/camvid_recipe_chain.sh runs noaux
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs}
shift || true
STEPS=("$@")
[[ ${#STEPS[@]} -gt 0 ]] || STEPS=(noaux base bright pack)
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS
FASTERSEG=${FASTERSEG:-.venv/bin/fasterseg}
GENOTYPE=benchmarks/results/camvid_cpu_search/student.json
RECIPE=configs/train/camvid_scratch.yaml
CARRIED=benchmarks/results/camvid_recipe
source benchmarks/lib.sh

# Runs whose checkpoints pack carries (the curve arm was stopped at 140; run `curve` again to resume it)
declare -A RUNS=([noaux]=camvid_scratch_noaux [base]=camvid_arm_base [bright]=camvid_arm_bright)
ARM=(--genotype "$GENOTYPE" --config "$RECIPE" --set loss.aux_weight=0 --set epochs=100 --set val_every=10
     --set seed=0 --set compact_every=10)

for step in "${STEPS[@]}"; do
  echo "== $step ($(date -u +%FT%TZ))"
  case $step in
    curve) train_carried camvid_scratch_curve "$CARRIED/camvid_scratch_curve.compact.safetensors" \
             --genotype "$GENOTYPE" --config "$RECIPE" --set compact_every=10 ;;
    noaux) train_carried camvid_scratch_noaux "$CARRIED/camvid_scratch_noaux.compact.safetensors" \
             --genotype "$GENOTYPE" --config "$RECIPE" --set loss.aux_weight=0 --set compact_every=10 ;;
    base) train_carried camvid_arm_base "$CARRIED/camvid_arm_base.compact.safetensors" "${ARM[@]}" ;;
    bright) train_carried camvid_arm_bright "$CARRIED/camvid_arm_bright.compact.safetensors" "${ARM[@]}" \
             --set data.photometric.brightness=0.5 --set data.photometric.contrast=0.5 ;;
    pack)
      mkdir -p "$CARRIED"
      for name in "${RUNS[@]}"; do
        [[ -f "$OUT/$name/epochs.csv" ]] && cp "$OUT/$name/epochs.csv" "$CARRIED/${name}_epochs.csv"
        if [[ -f "$OUT/$name/metrics.json" ]]; then
          rm -f "$CARRIED/$name.compact.safetensors"  # finished: its model ships instead
        elif [[ -f "$OUT/$name/compact.safetensors" ]]; then
          cp "$OUT/$name/compact.safetensors" "$CARRIED/$name.compact.safetensors"
          echo "$name: compact checkpoint of epoch $(tail -n 1 "$OUT/$name/epochs.csv" | cut -d, -f1) or earlier -> $CARRIED"
        fi
      done ;;
    *) echo "unknown step '$step' (see the header of $0)" >&2; exit 2 ;;
  esac
done
