"""Halve a finished baseline run's weights to fp16, so that a run can be committed (under 10 MB) and
compared on a new machine without training it again.

    python benchmarks/baselines/half_weights.py runs/baselines/bisenetv2 \\
        benchmarks/results/camvid_cpu_search/bisenetv2_seq_train.safetensors

``compare.py`` reads the result as ``bisenetv2:PATH.safetensors``; loading widens it back to fp32.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from networks import weights_file  # noqa: E402  (this folder is not a package)


def halve(source: Path, dest: Path) -> None:
    """Write ``source`` (a run folder's model.safetensors, or the file itself) as fp16, keeping its
    metadata; integer tensors (BatchNorm's batch counters) stay as they are."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from fasterseg.utils.io import atomic_path

    weights = weights_file(source)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no baseline weights there (has the run finished?)")
    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
    if not metadata or "num_classes" not in metadata:
        raise ValueError(f"{weights}: not a baseline model file (its metadata has no 'num_classes')")
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata={**metadata, "dtype": "float16"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="a finished baseline run folder, or its model.safetensors")
    p.add_argument("dest", type=Path, help="the fp16 .safetensors to write")
    args = p.parse_args()
    try:
        halve(args.source, args.dest)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(str(err))
    print(f"wrote {args.dest} ({args.dest.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
