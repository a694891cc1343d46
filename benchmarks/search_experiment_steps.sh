# Steps shared by the search experiments (sourced, not run): each skips a finished run and
# resumes an interrupted one, so an experiment script can simply be run again.
# Needs OUT (run folder), DATA (synthetic data folder) and the array `common` (search arguments).

search() {  # NAME ARGS...: run (or resume) one search, logging to OUT/NAME.log
  local name=$1; shift
  if [[ -f "$OUT/$name/summary.json" ]]; then return 0; fi
  if [[ -d "$OUT/$name" ]]; then
    fasterseg search --resume "$OUT/$name" --threads 1 >"$OUT/$name.log" 2>&1
  else
    fasterseg search "${common[@]}" --name "$name" "$@" >"$OUT/$name.log" 2>&1
  fi
}

train() {  # NAME [SEED]: train OUT/NAME/student.json from scratch, one recipe for every experiment;
           # with SEED the run is OUT/train_NAME_seedSEED and uses that training seed
  local name=$1 seed=${2:-} run="$OUT/train_$1" extra=()
  if [[ -n "$seed" ]]; then run="$run"_seed"$seed"; extra=(--set "seed=$seed"); fi
  if [[ -f "$run/metrics.json" ]]; then return 0; fi
  if [[ -f "$run/config.yaml" ]]; then
    OMP_NUM_THREADS=1 fasterseg train --resume "$run" --quiet >"$run.log" 2>&1
  else
    OMP_NUM_THREADS=1 fasterseg train --genotype "$OUT/$name/student.json" --data "synth:$DATA" \
      --config configs/train/synth.yaml --name "$(basename "$run")" --out-dir "$OUT" --quiet \
      --set "data.crop_size=[128, 256]" --set epochs=30 --set iters_per_epoch=15 --set val_every=10 \
      --set data.workers=0 "${extra[@]}" >"$run.log" 2>&1
  fi
}
