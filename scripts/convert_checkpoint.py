"""Convert a training run's ``checkpoint.pt`` (the torch pickle that fasterseg wrote before
2026-12-07) into ``checkpoint.safetensors``, the format ``fasterseg train --resume`` reads now.

The old file is read with ``torch.load(weights_only=True)``, which rebuilds tensors and plain
values only and runs no code from the file; the new one is checked to read back equal before the
old one is removed. The resumed run continues exactly (fp32, every optimiser buffer as it was).

    python scripts/convert_checkpoint.py RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml

from fasterseg.train.compact import RunRecord, TrainState, read_compact, save_compact
from fasterseg.utils.optimstate import flatten_optimizer


def convert(run_dir: Path) -> Path:
    old, new = run_dir / "checkpoint.pt", run_dir / "checkpoint.safetensors"
    if not old.is_file():
        raise SystemExit(f"{run_dir}: no checkpoint.pt to convert")
    if new.exists():
        raise SystemExit(f"{new}: already exists; remove one of the two checkpoints first")
    raw = torch.load(old, map_location="cpu", weights_only=True)
    state = TrainState(model=raw["model"], optimizer=raw["optimizer"], scaler=raw["scaler"], epoch=raw["epoch"],
                       best_miou=raw["best_miou"], history=json.loads(raw["history"]), rng_cpu=raw["rng_cpu"])
    init = run_dir / "init.json"
    record = RunRecord(config=yaml.safe_load((run_dir / "config.yaml").read_text()),
                       genotype=json.loads((run_dir / "genotype.json").read_text()),
                       init=json.loads(init.read_text()) if init.is_file() else None)
    save_compact(new, state, record, max_mb=float("inf"))
    back = read_compact(new)[0]
    same = (back.epoch == state.epoch and back.history == state.history and torch.equal(back.rng_cpu, state.rng_cpu)
            and all(torch.equal(back.model[k].cpu(), v.cpu()) for k, v in state.model.items()))
    a, b = {}, {}
    flat_a, flat_b = flatten_optimizer("o", state.optimizer, a), flatten_optimizer("o", back.optimizer, b)
    same = same and json.loads(json.dumps(flat_a)) == flat_b and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if not same:
        new.unlink()
        raise SystemExit(f"{new}: did not read back equal to {old}; nothing changed")
    old.unlink()
    return new


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders holding a checkpoint.pt")
    for run in ap.parse_args().runs:
        print(f"wrote {convert(run)} (epoch {read_compact(run / 'checkpoint.safetensors')[0].epoch + 1} done)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
