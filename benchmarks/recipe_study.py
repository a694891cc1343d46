"""The CamVid recipe study's table and plot (issue 31), read from the committed per-epoch logs.

    python benchmarks/recipe_study.py [--results benchmarks/results/camvid_recipe]
                                      [--plot docs/images/camvid_recipe_study.png] [--table T.md]

The logs are the ones `benchmarks/camvid_recipe_chain.sh ... pack` copies next to the compact
checkpoints: ``camvid_scratch_*_epochs.csv`` (the long learning curves) and
``camvid_arm_*_epochs.csv`` (the 100-epoch arms, one choice changed against ``base``). Every score is
``seq_val`` mIoU on whole frames. An arm is summarised by the mean of its last three evaluations
(epochs 80, 90, 100) beside its final one: single evaluations of one run swing by 1-2 points, so
the mean is the figure to compare.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

# What each arm changes against `base` (the chain's step of the same name says how it is run)
ARMS = {
    "base": "camvid_scratch.yaml without aux heads, 100 epochs (Adam 1e-3, class weights, whole 360x480 crops)",
    "bright": "brightness and contrast jitter 0.5 instead of 0.3",
    "ohem": "OHEM instead of class weights",
    "both": "OHEM on top of the class weights",
    "sgd": "SGD 0.02 (momentum 0.9, weight decay 5e-4) instead of Adam",
    "crop": "288x384 crops instead of whole 360x480 frames",
    "distill": "distilled from the no-aux run's averaged weights of epoch 490 (42.0)",
    "progressive": "images and crops at 0.5x to epoch 40, 0.75x to 70, then full size",
    "imagenorm": "each image standardised per channel before the stem (input_norm=image)",
    "classmix": "half of the next crop's classes pasted into a crop, half of the time (data.mix)",
    "cutmix": "a rectangle of the next crop pasted into a crop, half of the time (data.mix)",
    "quarter": "the 1/8 scores refined at 1/4 with the stem's 1/4 features (output_stride=4)",
    "base_fp32": "base in fp32 (precision=fp32): the control of an arm run on a CPU without bf16 units",
}
SEED_SUFFIX = "_s"  # an arm run again with seed k is logged as ARM_s{k}
CURVES = {"noaux": "camvid_scratch.yaml without aux heads, 800 epochs", "curve": "camvid_scratch.yaml, 800 epochs"}
# Averaged-weight scores a since-fixed bug made void (switched on at a resume, the average started from
# the fresh initialisation, 2026-12-07): kept in the logs as written, left out of the study
VOID_AVERAGED = {"noaux": {440, 460}}


@dataclass
class Log:
    """One run's evaluations: epoch -> seq_val mIoU (percent), raw weights and their moving average."""

    name: str
    raw: dict[int, float]
    averaged: dict[int, float]

    @classmethod
    def read(cls, path: Path, name: str) -> "Log":
        raw, averaged = {}, {}
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                epoch = int(row["epoch"])
                if row.get("val_mIoU"):
                    raw[epoch] = 100 * float(row["val_mIoU"])
                if row.get("val_mIoU_ema") and epoch not in VOID_AVERAGED.get(name, ()):
                    averaged[epoch] = 100 * float(row["val_mIoU_ema"])
        return cls(name, raw, averaged)

    def last_mean(self, count: int = 3) -> float | None:
        """Mean of the last ``count`` raw evaluations (None with fewer)."""
        scores = [self.raw[e] for e in sorted(self.raw)][-count:]
        return sum(scores) / count if len(scores) == count else None


def read_logs(results: Path, prefix: str, known: dict[str, str]) -> list[Log]:
    """The logs named ``{prefix}{name}_epochs.csv``, in ``known``'s order, then any others by name."""
    found = {p.name[len(prefix): -len("_epochs.csv")]: p for p in results.glob(f"{prefix}*_epochs.csv")}
    order = [n for n in known if n in found] + sorted(n for n in found if n not in known)
    return [Log.read(found[n], n) for n in order]


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def arms_table(arms: list[Log], schedule: int = 100) -> str:
    """One row per arm: its evaluations every 10 epochs, the last three's mean, the change against base."""
    epochs = sorted({e for a in arms for e in a.raw})
    base = next((a.last_mean() for a in arms if a.name == "base"), None)
    lines = ["| arm | what changes | " + " | ".join(str(e) for e in epochs) + " | last 3 | vs base |",
             "|---" * (len(epochs) + 4) + "|"]
    for a in arms:
        mean = a.last_mean()
        done = max(a.raw, default=0) >= schedule
        delta = "" if mean is None or base is None or a.name == "base" or not done else f"{mean - base:+.1f}"
        lines.append(f"| {a.name} | {describe(a.name)} | " + " | ".join(_cell(a.raw.get(e)) for e in epochs)
                     + f" | {_cell(mean) if done else '(running)'} | {delta} |")
    return "\n".join(lines) + "\n"


def seed_of(name: str) -> tuple[str, int] | None:
    """(arm, seed) of an arm run again with another seed (``cutmix_s1`` -> ``("cutmix", 1)``), else None."""
    arm, sep, seed = name.rpartition(SEED_SUFFIX)
    return (arm, int(seed)) if sep and arm and seed.isdigit() else None


def describe(name: str) -> str:
    """What an arm changes against base (an arm's other seeds say which seed)."""
    again = seed_of(name)
    return f"{again[0]}, seed {again[1]}" if again else ARMS.get(name, "")


def seeds_table(arms: list[Log], schedule: int = 100) -> str:
    """Arms run with more than one seed: each seed's last-three mean, their mean, and the change against
    base's mean over its own seeds (empty when no arm has a second finished seed)."""
    finished = {a.name: a.last_mean() for a in arms if max(a.raw, default=0) >= schedule and a.last_mean() is not None}
    groups: dict[str, dict[int, float]] = {}
    for name, mean in finished.items():
        again = seed_of(name)
        if again:
            groups.setdefault(again[0], {})[again[1]] = mean
    for arm in list(groups):
        if arm in finished:
            groups[arm][0] = finished[arm]
    groups = {arm: seeds for arm, seeds in groups.items() if len(seeds) > 1}
    if not groups:
        return ""
    base = groups.get("base")
    base_mean = sum(base.values()) / len(base) if base else None
    lines = ["| arm | seeds | each seed's last 3 | mean | vs base (mean over its seeds) |", "|---|---|---|---|---|"]
    for arm in [a for a in ARMS if a in groups] + sorted(a for a in groups if a not in ARMS):
        seeds = groups[arm]
        mean = sum(seeds.values()) / len(seeds)
        delta = "" if base_mean is None or arm == "base" else f"{mean - base_mean:+.1f}"
        lines.append(f"| {arm} | {', '.join(str(k) for k in sorted(seeds))} | "
                     f"{' / '.join(_cell(seeds[k]) for k in sorted(seeds))} | {_cell(mean)} | {delta} |")
    return "\n".join(lines) + "\n"


def curve_table(curves: list[Log]) -> str:
    """Epoch rows, a column per long run (raw, and its average where it kept one)."""
    epochs = sorted({e for c in curves for e in c.raw})
    heads, cols = [], []
    for c in curves:
        heads.append(c.name)
        cols.append(c.raw)
        if c.averaged:
            heads.append(f"{c.name} (averaged weights)")
            cols.append(c.averaged)
    lines = ["| epoch | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    lines += [f"| {e} | " + " | ".join(_cell(col.get(e)) for col in cols) + " |" for e in epochs]
    return "\n".join(lines) + "\n"


def plot(curves: list[Log], arms: list[Log], path: Path) -> None:
    """Two panels: the long learning curves, and the arms over their 100-epoch schedule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for c in curves:
        line, = left.plot(sorted(c.raw), [c.raw[e] for e in sorted(c.raw)], marker="o", ms=3, label=CURVES.get(c.name, c.name))
        if c.averaged:
            left.plot(sorted(c.averaged), [c.averaged[e] for e in sorted(c.averaged)], marker="s", ms=4, ls="--",
                      color=line.get_color(), label=f"{c.name}: averaged weights")
    left.set(title="Learning curve (800-epoch schedule)", xlabel="epoch", ylabel="seq_val mIoU (%)")
    for a in arms:
        right.plot(sorted(a.raw), [a.raw[e] for e in sorted(a.raw)], marker="o", ms=3, ls="--" if seed_of(a.name) else "-",
                   lw=2.5 if a.name.startswith("base") else 1.2, label=f"{a.name}: {_cell(a.last_mean()) or 'running'}")
    right.set(title="Arms (100-epoch schedule; legend: mean of the last 3)", xlabel="epoch")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # an empty panel (no arms yet) has nothing to name
            ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("CamVid from scratch, seq_train -> seq_val, the built-in student's genotype")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="benchmarks/results/camvid_recipe", help="folder of the *_epochs.csv logs")
    p.add_argument("--plot", help="write the two-panel plot here (PNG)")
    p.add_argument("--table", help="also write the tables here (Markdown)")
    args = p.parse_args(argv)
    results = Path(args.results)
    curves = read_logs(results, "camvid_scratch_", CURVES)
    arms = read_logs(results, "camvid_arm_", ARMS)
    if not curves and not arms:
        p.error(f"{results}: no camvid_scratch_*_epochs.csv or camvid_arm_*_epochs.csv logs")
    seeds = seeds_table(arms)
    text = ("## Arms\n\n" + arms_table(arms) + (f"\n## Arms over seeds\n\n{seeds}" if seeds else "")
            + "\n## Learning curves\n\n" + curve_table(curves))
    print(text, end="")
    if args.table:
        Path(args.table).write_text(text)
    if args.plot:
        plot(curves, arms, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
