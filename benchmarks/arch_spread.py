"""How far a search moved its architecture parameters: per architecture and kind (alpha: the
operator of each cell, beta: where a path goes down, ratio: the width), the largest spread within
one choice and the largest softmax weight against a uniform choice's.

The derived network takes each choice's argmax, so a search whose parameters stay near their
initialisation (|a| ~ 1e-3) picks by small drifts: what it mixed was close to uniform. With Adam
the parameters move at most ``arch_lr`` per step, so the run's budget ``arch_lr x steps`` bounds
the spread; the paper's search (30 epochs of 400 steps at 3e-4) allows 3.6.

    python benchmarks/arch_spread.py runs/camvid_cpu_search_adam [runs/OTHER ...]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

KINDS = ("alpha", "beta", "ratio")


def choices(tree) -> list[list[float]]:
    """Every innermost list of numbers (one choice's logits) in a nested list."""
    if isinstance(tree, list) and tree and all(isinstance(v, (int, float)) for v in tree):
        return [list(map(float, tree))]
    if isinstance(tree, list):
        return [c for item in tree for c in choices(item)]
    return []


def spread_rows(arch_params: dict) -> list[tuple[str, str, int, float, float]]:
    """(arch, kind, choices, largest spread, largest softmax weight / uniform weight) per arch and kind;
    single-option choices (nothing to choose) are left out."""
    rows = []
    for arch, params in arch_params.items():
        for kind in KINDS:
            found = [c for key, value in params.items() if key.startswith(kind) for c in choices(value) if len(c) > 1]
            if not found:
                continue
            spread = max(max(c) - min(c) for c in found)
            lift = max(len(c) * math.exp(max(c)) / sum(math.exp(v) for v in c) for c in found)
            rows.append((arch, kind, len(found), spread, lift))
    return rows


def budget(config: dict) -> tuple[int, float] | None:
    """(architecture steps, arch_lr x steps) of a search run's config, None when it has no search phase."""
    search = config.get("search") or {}
    if not search:
        return None
    steps = int(search.get("epochs", 0)) * int(search.get("iters_per_epoch", 0))
    return steps, steps * float(search.get("arch_lr", 3e-4))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="search run folders (RUN/search/arch.json)")
    args = p.parse_args(argv)
    print("| run | arch steps | arch_lr x steps | architecture | kind | choices | largest spread | largest weight / uniform |")
    print("|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        path = run / "search" / "arch.json"
        if not path.is_file():
            raise SystemExit(f"{path}: no architecture parameters (is {run} a search run that reached its search phase?)")
        arch_params = json.loads(path.read_text())
        steps = "?"
        movement = "?"
        config = run / "config.yaml"
        if config.is_file():
            import yaml

            found = budget(yaml.safe_load(config.read_text()) or {})
            if found:
                steps, movement = str(found[0]), f"{found[1]:.3f}"
        for arch, kind, count, spread, lift in spread_rows(arch_params):
            print(f"| {run.name} | {steps} | {movement} | {arch} | {kind} | {count} | {spread:.3f} | {lift:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
