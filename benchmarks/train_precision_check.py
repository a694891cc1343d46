"""Does the fast CPU training setting cost accuracy? The same short CamVid recipe trained in the
old setting (fp32 NCHW, PNGs decoded every step) and in the new default (bf16 autocast,
channels_last, decoded cache), with two seeds each, scored on the held-out sequence (seq_val).

    python benchmarks/train_precision_check.py [--epochs 8] [--seeds 0 1] [--only old|fast] [--out runs/precision_check]

Runs are resumable (an existing finished run is read, not retrained). Prints a markdown table:
per setting each seed's held-out mIoU, the mean, the spread (max - min), and the minutes the
epochs took; the fast setting keeps accuracy when its mean is within the seeds' spread of the old one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SETTINGS = {
    "fp32 NCHW, PNG decoding": ["precision=fp32", "channels_last=false", "data.cache=false", "data.workers=1"],
    "bf16 channels_last, cache": ["precision=bf16", "channels_last=true", "data.cache=true", "data.workers=0"],
}


def run_one(genotype: str, out: Path, name: str, extra: list[str], epochs: int, seed: int, smoke: bool) -> dict:
    from fasterseg.cli import main

    metrics = out / name / "metrics.json"
    if not metrics.is_file():
        args = ["train", "--genotype", genotype, "--config", str(REPO / "configs/train/camvid_sgd180.yaml"), "--name", name,
                "--out-dir", str(out), "--quiet", "--set", f"epochs={epochs}", "--set", f"val_every={epochs}",
                "--set", f"seed={seed}"]
        if smoke:  # a check of the script itself, not of accuracy
            args += ["--set", "iters_per_epoch=2", "--set", "val_images=2", "--set", "batch_size=2"]
        for setting in extra:
            args += ["--set", setting]
        if (out / name / "checkpoint.safetensors").is_file():
            args = ["train", "--resume", str(out / name), "--quiet"]
        if main(args):
            sys.exit(f"training {name} failed")
    return json.loads(metrics.read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", default="runs/precision_check")
    p.add_argument("--arch", default=str(REPO.parent / "shared/reference/official/arch_1.pt"))
    p.add_argument("--only", choices=["old", "fast"], default=None,
                   help="run one setting (e.g. the fast one again after a change to the training code)")
    p.add_argument("--smoke", action="store_true", help="2 iterations and 2 val images per run: checks the script only")
    args = p.parse_args(argv)
    out = Path(args.out)
    genotype = out / "official_student.safetensors"
    if not genotype.is_file():
        from fasterseg.cli import main as cli

        if cli(["import-official", "--arch", args.arch, "--out", str(genotype)]):
            sys.exit(f"cannot import {args.arch}")
    rows = []
    for label, extra in SETTINGS.items():
        slug = "fast" if "bf16" in label else "old"
        if args.only and slug != args.only:
            continue
        scores, minutes = [], []
        for seed in args.seeds:
            m = run_one(str(genotype), out, f"{slug}_s{seed}", extra, args.epochs, seed, args.smoke)
            scores.append(100 * m["best_val_mIoU"])
            minutes.append(sum(h["seconds"] for h in m["history"]) / 60)
        rows.append((label, scores, minutes))
    print(f"\nCamVid, official student from scratch, configs/train/camvid_sgd180.yaml with {args.epochs} epochs; "
          f"held-out seq_val mIoU\n")
    print("| setting | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | spread | minutes of epochs |")
    print("|---|" + "---|" * len(args.seeds) + "---|---|---|")
    for label, scores, minutes in rows:
        print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in scores)
              + f" | {sum(scores) / len(scores):.2f} | {max(scores) - min(scores):.2f} | "
              + ", ".join(f"{v:.1f}" for v in minutes) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
