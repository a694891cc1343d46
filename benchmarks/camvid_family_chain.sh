#!/usr/bin/env bash
# The CamVid latency family (issue 30 item 4, issue 31 item 4): three searches at three FPS windows on
# this CPU's deploy-path table, each recorded in benchmarks/results/, then each member trained with the
# chosen recipe (configs/train/camvid.yaml) held out (seq_train -> seq_val) and on all 468 frames.
#
#   bash benchmarks/camvid_family_chain.sh [OUT [STEP ...]]   (default OUT=runs, the searches in order)
#
# Steps (each resumes its run folder, or is skipped once finished):
#   small    configs/search/camvid_cpu_family_small.yaml -> OUT/camvid_cpu_family_s3: today's student's window
#            (85-100 table FPS), the search phase from the Adam search's pretraining where OUT/camvid_cpu_search_adam
#            has finished one on this machine, else with the same pretraining of its own, then its record
#            (camvid_cpu_family_s2 is the record of the run before latency_split)
#   medium   configs/search/camvid_cpu_family_wide.yaml -> OUT/camvid_cpu_family_m: the wide supernet's pretraining
#            (1000 steps, issue 30 item 2's 30 mIoU) and the search at twice today's latency (43-50 FPS), record
#   large    the same pretraining (pretrained_from OUT/camvid_cpu_family_m) searched at DDRNet-23-slim's
#            latency (35-40 FPS) -> OUT/camvid_cpu_family_l, record
#   train_small, train_medium, train_large   the member's student with configs/train/camvid.yaml on
#            seq_train (OUT/camvid_family_<member>_recipe: its held-out score) and on train + val
#            (OUT/camvid_family_<member>_final: the model to ship), one after the other, compact checkpoints
#            every 10 epochs (split into parts of at most 10 MB for the wider members)
#   pack     copy each unfinished training's compact checkpoint and log to benchmarks/results/camvid_family/
#
# A search's supernet (112 M parameters) cannot be committed: a search finishes on the machine that
# started it, where it checkpoints every 10 minutes (checkpoint_minutes), so a session's end costs at most that. Set THREADS (default 2) for the searches and the trainings alike.
set -euo pipefail
# Bash reads a script as it runs it: run a copy, so that this file can be edited while a chain is under way
if [[ -z ${CHAIN_ROOT:-} ]]; then
  snapshot=$(mktemp "${TMPDIR:-/tmp}/camvid_family_chain.XXXXXX")
  cp "$0" "$snapshot"
  CHAIN_ROOT=$(cd "$(dirname "$0")/.." && pwd) CHAIN_SNAPSHOT=$snapshot exec bash "$snapshot" "$@"
fi
[[ -n ${CHAIN_SNAPSHOT:-} ]] && rm -f "$CHAIN_SNAPSHOT"
cd "$CHAIN_ROOT"
OUT=${1:-runs}
shift || true
STEPS=("$@")
[[ ${#STEPS[@]} -gt 0 ]] || STEPS=(small medium large)
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS
FASTERSEG=${FASTERSEG:-.venv/bin/fasterseg}
PYTHON="$(dirname "$(command -v "$FASTERSEG")")/python"
DATA=camvid:../shared/data/camvid
LUT=benchmarks/results/lut/cpu_openvino_bf16_360x480_camvid.json
RESULTS=${RESULTS:-benchmarks/results}  # where records are written and members' genotypes read
CARRIED=$RESULTS/camvid_family
source benchmarks/lib.sh
declare -A SEARCH=([small]=camvid_cpu_family_s3 [medium]=camvid_cpu_family_m [large]=camvid_cpu_family_l)

search() {  # NAME ARGS...: run (or resume, or skip once finished) a search, then record it
  local name=$1; shift
  if [[ ! -f "$OUT/$name/summary.json" ]]; then
    if [[ -f "$OUT/$name/config.yaml" ]]; then
      "$FASTERSEG" search --resume "$OUT/$name" --threads "$THREADS"
    else
      "$FASTERSEG" search --data "$DATA" --lut "$LUT" --name "$name" --out-dir "$OUT" --threads "$THREADS" "$@"
    fi
  fi
  record "$name"
}

record() {  # NAME: a finished search's log, config, genotypes, diagrams and record -> $RESULTS/NAME
  local name=$1 run=$OUT/$1 dir=$RESULTS/$1
  mkdir -p "$dir"
  cp "$run/search/log.csv" "$dir/search_log.csv"
  [[ -f "$run/pretrain/log.csv" ]] && cp "$run/pretrain/log.csv" "$dir/pretrain_log.csv"
  cp "$run/config.yaml" "$run/summary.json" "$run/student.json" "$run/teacher.json" "$dir/"
  cp "$run/search/student.png" "$run/search/evolution_student.png" "$dir/"
  "$PYTHON" benchmarks/search_record.py "$run" --size 360x480 \
    --genotype "teacher=$dir/teacher.json" --genotype "student=$dir/student.json" > "$dir/record.md"
  "$PYTHON" benchmarks/arch_spread.py "$run" > "$dir/arch_spread.md"
  echo "recorded $name in $dir"
}

train_member() {  # MEMBER: its searched student, held out then on every frame
  local member=$1 genotype=$RESULTS/${SEARCH[$1]}/student.json
  [[ -f "$genotype" ]] || { echo "train_$member: no $genotype yet; run the $member step first" >&2; exit 2; }
  train_carried "camvid_family_${member}_recipe" "$CARRIED/camvid_family_${member}_recipe.compact.safetensors" \
    --genotype "$genotype" --config configs/train/camvid.yaml
  train_carried "camvid_family_${member}_final" "$CARRIED/camvid_family_${member}_final.compact.safetensors" \
    --genotype "$genotype" --config configs/train/camvid.yaml --set 'data.train_split=[train,val]' --set val_every=100
}

for step in "${STEPS[@]}"; do
  echo "== $step ($(date -u +%FT%TZ))"
  case $step in
    small)
      own=()  # the Adam search's pretraining lives only on the machine that ran it; elsewhere pretrain the same way here
      [[ -f "$OUT/camvid_cpu_search_adam/pretrain/done" ]] || own=(--set pretrained_from=)
      search "${SEARCH[small]}" --config configs/search/camvid_cpu_family_small.yaml "${own[@]}" ;;
    medium) search "${SEARCH[medium]}" --config configs/search/camvid_cpu_family_wide.yaml ;;
    large) search "${SEARCH[large]}" --config configs/search/camvid_cpu_family_wide.yaml \
             --set "pretrained_from=$OUT/${SEARCH[medium]}" --set 'search.fps_min={student: 35.0}' \
             --set 'search.fps_max={student: 40.0}' ;;
    train_small|train_medium|train_large) train_member "${step#train_}" ;;
    pack)
      for member in small medium large; do
        carry_compact "camvid_family_${member}_recipe" "$CARRIED"
        carry_compact "camvid_family_${member}_final" "$CARRIED"
      done ;;
    *) echo "unknown step '$step' (see the header of benchmarks/camvid_family_chain.sh)" >&2; exit 2 ;;
  esac
done
