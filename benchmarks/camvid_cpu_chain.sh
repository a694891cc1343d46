#!/usr/bin/env bash
# FasterSeg's own result on real data, for this CPU (issue 15): a latency table for the deploy path
# (OpenVINO bf16 at 360x480), the search on CamVid's training sequences with epochs picked on the
# held-out one, the searched networks, the official student architecture and two hand-designed
# baselines trained with the same recipe on seq_train, all compared on seq_val (held out) for
# accuracy and on the deploy path for latency, and the model to ship trained on every frame.
#
#   bash benchmarks/camvid_cpu_chain.sh [OUT [STEP ...]]   (default OUT=runs, every step in order)
#
# Steps (each resumes, or is skipped when its result exists):
#   lut        the latency table of the deploy path and its validation
#   search     the search (skipped when benchmarks/results/camvid_cpu_search holds the genotypes)
#   teacher    the searched teacher on seq_train
#   student    the searched student on seq_train, distilled from that teacher
#   plain      the searched student on seq_train with the recipe alone (the baselines' terms)
#   final      the model to ship: the `plain` recipe on train + val
#   official   the official student architecture on seq_train
#   ddrnet     DDRNet-23-slim on seq_train;   bisenetv2   BiSeNetV2 on seq_train
#   compare    held-out mIoU and deploy-path latency side by side, with the Pareto plot
#
# Two steps can run side by side, one thread each, which uses two cores better than one run on both:
#   THREADS=1 bash benchmarks/camvid_cpu_chain.sh runs ddrnet & THREADS=1 bash benchmarks/camvid_cpu_chain.sh runs official
#
# The final model is trained without distillation: the teacher's weights (23 MB in fp16) are too big
# to commit, and on a 2-core CPU without AMX the teacher (2 h) and a distilled final (about 3 h) do
# not fit one session. Times are in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs}
shift || true
STEPS=("$@")
[[ ${#STEPS[@]} -gt 0 ]] || STEPS=(lut search teacher student plain final official ddrnet bisenetv2 compare)
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS
FASTERSEG=${FASTERSEG:-.venv/bin/fasterseg}
PYTHON=${PYTHON:-.venv/bin/python}
DATA=camvid:../shared/data/camvid
SEARCH_CONFIG=configs/search/camvid_cpu.yaml
RECIPE=configs/train/camvid_sgd180.yaml
LUT="$OUT/lut/camvid_cpu_ov_bf16_360x480.json"
SEARCH="$OUT/camvid_cpu_search"
COMMITTED=benchmarks/results/camvid_cpu_search
mkdir -p "$OUT/lut"
source benchmarks/lib.sh
GENOTYPES=$SEARCH
[[ -f "$COMMITTED/student.json" ]] && GENOTYPES=$COMMITTED

baseline() {  # NETWORK: train (or resume) one hand-designed baseline with the recipe, as any network
  local net=$1 dir="$OUT/baselines/$1"
  [[ -f "$dir/metrics.json" ]] && return 0
  if [[ -f "$dir/checkpoint.safetensors" ]]; then
    "$FASTERSEG" train --resume "$dir" --quiet
  else
    "$FASTERSEG" train --network "$net" --config "$RECIPE" --out-dir "$OUT/baselines" --name "$net" --quiet
  fi
}

finished() {  # RUN_DIR [COMMITTED_FILE]: a finished run's last model, else the committed copy of one
  if [[ -f $1/metrics.json ]]; then echo "$1/last.safetensors"; elif [[ -f ${2:-} ]]; then echo "$2"; fi
}

finished_baseline() {  # NETWORK: its finished run's model, else its committed fp16 weights (the old loop's)
  if [[ -f $OUT/baselines/$1/metrics.json ]]; then echo "$OUT/baselines/$1/last.safetensors"
  elif [[ -f $COMMITTED/${1}_seq_train.safetensors ]]; then echo "$1:$COMMITTED/${1}_seq_train.safetensors"; fi
}

compare_models() {  # the --model arguments of every finished network; says which are missing
  local name spec
  while read -r name spec; do
    if [[ -n $spec ]]; then printf '%s\n' --model "$name=$spec"
    else echo "compare: $name has not finished training (left out)" >&2; fi
  done <<LIST
official $(finished "$OUT/camvid_heldout" "$COMMITTED/official_seq_train.safetensors")
searched $(finished "$OUT/camvid_cpu_student_nokd" "$COMMITTED/student_nokd_seq_train.safetensors")
searched+KD $(finished "$OUT/camvid_cpu_student" "$COMMITTED/student_seq_train.safetensors")
ddrnet23slim $(finished_baseline ddrnet23slim)
bisenetv2 $(finished_baseline bisenetv2)
LIST
}

for step in "${STEPS[@]}"; do
  echo "== $step ($(date -u +%FT%TZ))"
  case $step in
    lut)
      "$FASTERSEG" lut build --backend openvino --precision bf16 --size 360x480 --threads 2 --space "$SEARCH_CONFIG" \
        --out "$LUT" --no-progress
      [[ -f "$OUT/lut/validate_camvid_cpu_space/validate.json" ]] || "$FASTERSEG" lut validate --lut "$LUT" \
        --space "$SEARCH_CONFIG" --samples 30 --threads 2 --out-dir "$OUT/lut/validate_camvid_cpu_space" --no-progress ;;
    search)
      if [[ $GENOTYPES == "$COMMITTED" ]]; then
        echo "genotypes committed in $COMMITTED: not searching again"
      elif [[ ! -f "$SEARCH/summary.json" ]]; then
        if [[ -f "$SEARCH/config.yaml" ]]; then
          "$FASTERSEG" search --resume "$SEARCH" --threads 2
        else
          "$FASTERSEG" search --config "$SEARCH_CONFIG" --data "$DATA" --lut "$LUT" --name camvid_cpu_search \
            --out-dir "$OUT" --threads 2
        fi
      fi ;;
    teacher) train camvid_cpu_teacher --genotype "$GENOTYPES/teacher.json" --config "$RECIPE" ;;
    student) train camvid_cpu_student --genotype "$GENOTYPES/student.json" --config "$RECIPE" \
               --teacher "$OUT/camvid_cpu_teacher/last.safetensors" ;;
    plain) train camvid_cpu_student_nokd --genotype "$GENOTYPES/student.json" --config "$RECIPE" ;;
    # Every labelled frame, so its own validation score is not held out: `plain` is its held-out measure.
    final) train camvid_cpu_final_nokd --genotype "$GENOTYPES/student.json" --config "$RECIPE" \
             --set 'data.train_split=[train,val]' --set val_every=30 ;;
    official)
      ARCH="$OUT/official_student_arch.safetensors"
      [[ -f "$ARCH" ]] || "$FASTERSEG" import-official --arch ../shared/reference/official/arch_1.pt --out "$ARCH"
      train camvid_heldout --genotype "$ARCH" --config "$RECIPE" ;;
    ddrnet) baseline ddrnet23slim ;;
    bisenetv2) baseline bisenetv2 ;;
    compare)
      mapfile -t models < <(compare_models)
      "$PYTHON" benchmarks/baselines/compare.py --data "$DATA" --split seq_val --size 360x480 --threads 2 \
        --backend openvino:bf16 openvino:fp32 onnxruntime:fp32 --out "$OUT/compare_camvid_cpu" \
        "${models[@]}" ;;
    *) echo "unknown step '$step' (see the header of $0)" >&2; exit 2 ;;
  esac
done
