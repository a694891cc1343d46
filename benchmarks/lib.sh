# Shared by the benchmark scripts: `source benchmarks/lib.sh` after setting OUT and FASTERSEG.

train() {  # NAME ARGS...: train (or resume, or skip when finished) one run into OUT/NAME
  local name=$1; shift
  if [[ -f "$OUT/$name/metrics.json" ]]; then return 0; fi
  if [[ -f "$OUT/$name/checkpoint.pt" ]]; then
    "$FASTERSEG" train --resume "$OUT/$name" --quiet
  else
    "$FASTERSEG" train --name "$name" --out-dir "$OUT" --quiet "$@"
  fi
}
