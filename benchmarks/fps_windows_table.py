"""The table of issue 5's experiments, from the run directories `search_fps_windows.sh` (or
`search_collapse_official_table.sh`) wrote.

    python benchmarks/fps_windows_table.py runs/fps_windows [RUN ...]   (default: the six runs of search_fps_windows.sh)

Per search: its FPS window, how the latency weight and the student's candidates moved, and the
final student: per branch its cells, where it goes down and its mean width, how often each op
appears, table FPS (inside the window or not), the supernet's val mIoU of that pairing at the
last search epoch and, when trained, the val mIoU of the student trained from scratch (each
training seed, and their mean; with several runs also the mean over runs).
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path
from statistics import mean, stdev

import yaml

from fasterseg.genotype import END_STRIDES
from fasterseg.modelfile import load_genotype
from fasterseg.nets.summary import count_macs


def _branch(b) -> str:
    downs = [i for i, d in enumerate(b.downs) if d]
    width = sum(b.widths) / len(b.widths) if b.widths else 1.0
    return f"1/{END_STRIDES[b.end]}: {len(b.ops)} cells, down after {downs or '-'}, width {width:.2f}"


def _ops(genotype) -> str:
    """How often each operator appears in the student's cells (the ops the latency term can cheapen)."""
    counts = Counter(op for b in genotype.branches for op in b.ops)
    return ", ".join(f"{op} {n}" for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def trained_mious(run: Path) -> list[float]:
    """Val mIoU (%) of the student trained from scratch: training seed 0 (``train_NAME``), then
    any further training seeds (``train_NAME_seedK``) in order of K."""
    runs = [run.parent / f"train_{run.name}"]
    seeded = [p for p in run.parent.glob(f"train_{run.name}_seed*") if p.is_dir()]
    runs += sorted(seeded, key=lambda p: int(p.name.rsplit("seed", 1)[1]))
    return [100 * json.loads((r / "metrics.json").read_text())["best_val_mIoU"]
            for r in runs if (r / "metrics.json").is_file()]


def row(run: Path, trained: list[float]) -> str:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    lo, hi = cfg["search"]["fps_min"]["student"], cfg["search"]["fps_max"]["student"]
    summary = json.loads((run / "summary.json").read_text())["student"]
    log = list(csv.DictReader((run / "search" / "log.csv").open()))
    weights = [float(r["latency_weight_student"]) for r in log]
    first, last = log[0], log[-1]
    genotype = load_genotype(run / "student.json")
    size = tuple(cfg["latency_size"])
    fps = summary["fps"]
    inside = "inside" if lo <= fps <= hi else "outside"
    pairing = "_".join(str(END_STRIDES[e]) for e in sorted(summary["ends"]))
    trained_miou = " / ".join(f"{m:.1f}" for m in trained) or "-"
    if len(trained) > 1:
        trained_miou += f" (mean {mean(trained):.1f})"
    return (f"| {run.name} ({cfg['latency_terms']}) | [{lo:g}, {hi:g}] | {cfg['search']['latency_weights']['student']:g} -> "
            f"{weights[-1]:g} (max {max(weights):g}) | {float(first['fps_student_8_32']):.0f}/{float(first['fps_student_16_32']):.0f}"
            f" -> {float(last['fps_student_8_32']):.0f}/{float(last['fps_student_16_32']):.0f} | "
            f"**{fps:.1f}** ({inside}) | {'; '.join(_branch(b) for b in genotype.branches)} | {_ops(genotype)} | "
            f"{count_macs(genotype, size) / 1e6:.0f} M | {100 * summary['miou'][pairing]:.1f} | {trained_miou} |")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("runs/fps_windows")
    names = argv[1:] or ["slow_window", "mid_window", "fast_window", "faster_window", "coupled", "coupled_faster"]
    print("| search | window (FPS) | latency weight | candidates' FPS (8+32 / 16+32), first -> last epoch "
          "| final student FPS | its branches | its ops | MACs | search val mIoU | trained val mIoU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    per_search = []
    for name in names:
        trained = trained_mious(out / name)
        print(row(out / name, trained))
        if trained:
            per_search.append(mean(trained))
    if len(per_search) > 1:
        print(f"\nTrained val mIoU, mean over training seeds, then over these {len(per_search)} searches: "
              f"{mean(per_search):.1f} (searches: {', '.join(f'{m:.1f}' for m in per_search)}; "
              f"spread between searches: sd {stdev(per_search):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
