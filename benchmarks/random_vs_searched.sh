#!/usr/bin/env bash
# Does the search beat random students of the same latency? (issue 30, item 3)
#
#   bash benchmarks/random_vs_searched.sh SEARCH_RUN [OUT [RUNS]]
#
# Samples 4 random students within 5% of SEARCH_RUN's student's table latency (once; committed in
# OUT, default benchmarks/results/random_vs_searched), trains them and the searched student with one
# short recipe (configs/train/camvid_scratch.yaml without auxiliary heads, 100 epochs, seq_train ->
# seq_val scored every 10, same seed) after scoring each inside the search's supernet, and writes
# OUT/table.md. Each training resumes where it stopped; finished ones are skipped; on a new machine
# an unfinished one continues from OUT/rvs_NAME.compact.safetensors when committed (copy
# RUNS/rvs_NAME/compact.safetensors there, `git add -f`). Set THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
SEARCH=${1:?usage: $0 SEARCH_RUN [OUT [RUNS]]}
DIR=${2:-benchmarks/results/random_vs_searched}
OUT=${3:-runs}
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS
FASTERSEG=${FASTERSEG:-.venv/bin/fasterseg}
PYTHON=${PYTHON:-.venv/bin/python}
source benchmarks/lib.sh

[[ -f "$DIR/students.csv" ]] || "$PYTHON" benchmarks/random_vs_searched.py sample "$SEARCH" --out "$DIR"
# The ranking first: the supernet lives in runs/ on one machine, the trainings can continue anywhere
[[ -f "$DIR/supernet_scores.csv" ]] || "$PYTHON" benchmarks/random_vs_searched.py rank "$SEARCH" --out "$DIR" --threads "$THREADS"
for genotype in "$DIR"/searched.json "$DIR"/random_[0-9]*.json; do
  [[ "$genotype" == *.arch.json ]] && continue
  name=$(basename "$genotype" .json)
  echo "== $name ($(date -u +%FT%TZ))"
  train_carried "rvs_$name" "$DIR/rvs_$name.compact.safetensors" --genotype "$genotype" \
    --config configs/train/camvid_scratch.yaml --set loss.aux_weight=0 --set epochs=100 \
    --set val_every=10 --set seed=0 --set compact_every=10
  if [[ -f "$OUT/rvs_$name/metrics.json" ]]; then  # finished: its log is what the table reads, on any machine
    rm -f "$DIR/rvs_$name.compact.safetensors"
    cp "$OUT/rvs_$name/epochs.csv" "$DIR/rvs_${name}_epochs.csv"
  fi
done
"$PYTHON" benchmarks/random_vs_searched.py table --out "$DIR" --runs "$OUT"
