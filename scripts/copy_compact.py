"""Copy a run's compact checkpoint (``RUN/compact.safetensors``, written every ``compact_every``
epochs) to where a repository carries it, e.g. ``benchmarks/results/.../NAME.compact.safetensors``.

A compact checkpoint too large for one file of ``compact_max_mb`` is split into parts beside it;
this copies the header file and every part, checked against their SHA-256 first, renames the
parts after the destination, and removes the parts an earlier copy left there. It prints each file
written (what to ``git add``).

    python scripts/copy_compact.py RUN/compact.safetensors DEST.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fasterseg.errors import TrainingError
from fasterseg.train.compact import copy_compact


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="a compact checkpoint (its parts beside it)")
    p.add_argument("dest", type=Path, help="where to copy it (a .safetensors file name)")
    args = p.parse_args(argv)
    try:
        for path in copy_compact(args.source, args.dest):
            print(path)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
