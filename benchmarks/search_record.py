"""A search's own record as markdown: per epoch the latency weight, each architecture's candidate
pairings (table FPS, inside the FPS window or not, supernet mIoU on the validation split), then the
genotypes it derived, for docs/benchmarks.md.

    python benchmarks/search_record.py RUN [--genotype NAME=FILE ...] [--size 360x480]

RUN is a ``fasterseg search`` run folder (its search/log.csv and config.yaml are read).
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import yaml

from fasterseg.commands.common import parse_size
from fasterseg.genotype import END_STRIDES
from fasterseg.modelfile import load_genotype
from fasterseg.nets.summary import count_macs

PAIRS = ("8_32", "16_32")


def _pct(value: str) -> str:
    return f"{100 * float(value):.1f}" if value not in ("", None) else "-"


def epoch_table(run: Path) -> str:
    config = yaml.safe_load((run / "search" / "config.yaml").read_text())
    low, high = config["fps_min"].get("student"), config["fps_max"].get("student")
    rows = list(csv.DictReader((run / "search" / "log.csv").open()))
    lines = [f"FPS window of the student: [{low:g}, {high:g}] table FPS. Supernet mIoU on `{config['val_split']}` "
             f"(first {config['val_limit'] or 'all'} frames, at 1/{config['downsample']} size), per candidate pairing of branches.", "",
             "| epoch | student latency weight | student FPS 8+32 / 16+32 | in window | student mIoU 8+32 / 16+32 | teacher mIoU 8+32 / 16+32 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        fps = [float(r[f"fps_student_{p}"]) for p in PAIRS]
        inside = ", ".join(p.replace("_", "+") for p, f in zip(PAIRS, fps) if low <= f <= high) or "-"
        lines.append(f"| {int(r['epoch']) + 1} | {float(r['latency_weight_student']):.3g} | {fps[0]:.1f} / {fps[1]:.1f} | {inside} | "
                     f"{_pct(r['miou_student_8_32'])} / {_pct(r['miou_student_16_32'])} | "
                     f"{_pct(r['miou_teacher_8_32'])} / {_pct(r['miou_teacher_16_32'])} |")
    return "\n".join(lines)


def genotype_table(items: list[tuple[str, Path]], size: tuple[int, int]) -> str:
    lines = ["| genotype | branches (cells, where it goes down, mean width) | ops | stem / head width | GMAC at "
             f"{size[0]}x{size[1]} |", "|---|---|---|---|---|"]
    for name, path in items:
        g = load_genotype(path)
        branches = "; ".join(
            f"1/{END_STRIDES[b.end]}: {len(b.ops)} cells, down after {[i for i, d in enumerate(b.downs) if d] or '-'}, "
            f"width {sum(b.widths) / len(b.widths) if b.widths else 1.0:.2f}" for b in g.branches)
        ops = Counter(op for b in g.branches for op in b.ops)
        ops_text = ", ".join(f"{op} {n}" for op, n in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"| {name} (`{path}`) | {branches} | {ops_text} | {g.stem_width:.2f} / {g.head_width:.2f} | "
                     f"{count_macs(g, size) / 1e9:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--genotype", action="append", default=[], metavar="NAME=FILE",
                   help="genotypes to describe (default: the run's teacher.json and student.json)")
    p.add_argument("--size", type=parse_size, default=(360, 480))
    args = p.parse_args()
    items = [(g.partition("=")[0], Path(g.partition("=")[2])) for g in args.genotype] or \
        [(n, args.run / f"{n}.json") for n in ("teacher", "student") if (args.run / f"{n}.json").exists()]
    print(epoch_table(args.run))
    print()
    print(genotype_table(items, args.size))


if __name__ == "__main__":
    main()
