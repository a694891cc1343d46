# Shared by the benchmark scripts: `source benchmarks/lib.sh` after setting OUT and FASTERSEG.

train() {  # NAME ARGS...: train (or resume, or skip when finished) one run into OUT/NAME
  local name=$1; shift
  if [[ -f "$OUT/$name/metrics.json" ]]; then return 0; fi
  if [[ -f "$OUT/$name/checkpoint.pt" && ! -f "$OUT/$name/checkpoint.safetensors" ]]; then
    "$(dirname "$(command -v "$FASTERSEG")")/python" scripts/convert_checkpoint.py "$OUT/$name"  # a run started before 2026-12-07
  fi
  if [[ -f "$OUT/$name/checkpoint.safetensors" ]]; then
    "$FASTERSEG" train --resume "$OUT/$name" --quiet
  else
    "$FASTERSEG" train --name "$name" --out-dir "$OUT" --quiet "$@"
  fi
}

train_carried() {  # NAME COMPACT ARGS...: as train, and where OUT/NAME is gone (a new machine), continue
                   # from the committed compact checkpoint COMPACT when there is one (issue 31)
  local name=$1 compact=$2; shift 2
  if [[ -f "$OUT/$name/metrics.json" ]]; then return 0; fi
  if [[ ! -f "$OUT/$name/checkpoint.safetensors" && ! -f "$OUT/$name/config.yaml" && -f "$compact" ]]; then
    "$FASTERSEG" train --continue-from "$compact" --name "$name" --out-dir "$OUT" --quiet
  else
    train "$name" "$@"
  fi
}

carry_compact() {  # NAME CARRIED: copy OUT/NAME's per-epoch log and, while unfinished, its compact checkpoint (with
                   # its parts, when split) to CARRIED for committing; once finished, remove what was carried
  local name=$1 carried=$2
  mkdir -p "$carried"
  [[ -f "$OUT/$name/epochs.csv" ]] && cp "$OUT/$name/epochs.csv" "$carried/${name}_epochs.csv"
  if [[ -f "$OUT/$name/metrics.json" ]]; then
    rm -f "$carried/$name.compact.safetensors" "$carried/$name".compact.e*.part*.safetensors  # its model ships instead
  elif [[ -f "$OUT/$name/compact.safetensors" ]]; then
    "$(dirname "$(command -v "$FASTERSEG")")/python" scripts/copy_compact.py "$OUT/$name/compact.safetensors" \
      "$carried/$name.compact.safetensors" >/dev/null
    echo "$name: compact checkpoint of epoch $(tail -n 1 "$OUT/$name/epochs.csv" | cut -d, -f1) or earlier -> $carried"
  fi
}
