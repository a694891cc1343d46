"""Milliseconds per training image of the augmentation (scale, crop, flip, photometric jitter,
normalise) now, against an earlier revision's, on real frames, interleaved round by round.

On a CPU the augmentation runs in the training process (a loader process only competes for the
same cores), so every millisecond here is paid by every step. The earlier revision's
``fasterseg/data/transforms.py`` is read with ``git show`` and run beside the current one with the
same frames, settings and seeds; the script also reports how far their outputs differ (the fast
paths compute the same augmentation to float rounding).

    python benchmarks/augment_speed.py [--baseline f262ec8] [--config configs/train/camvid_scratch.yaml]
                                       [--rounds 5] [--images 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def module_at(revision: str, path: str = "src/fasterseg/data/transforms.py"):
    """The module ``path`` as it was at ``revision`` (its imports resolve against the current package)."""
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    file = Path(tempfile.mkdtemp()) / "baseline_transforms.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_transforms", file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def build(module, cfg, ignore_index: int):
    d = cfg.data
    photometric = module.Photometric(**vars(d.photometric))
    return module.TrainTransform(crop_size=tuple(d.crop_size), scales=tuple(d.scales), flip=d.flip,
                                 base_scale=d.base_scale, ignore_index=ignore_index, photometric=photometric)


def ms_per_image(transform, frames, seed: int) -> float:
    start = time.perf_counter()
    for i, (image, label) in enumerate(frames):
        transform(image, label, torch.Generator().manual_seed(seed + i))
    return 1e3 * (time.perf_counter() - start) / len(frames)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="f262ec8", help="git revision whose augmentation is the baseline")
    p.add_argument("--config", default="configs/train/camvid_scratch.yaml", help="training config whose data settings are used")
    p.add_argument("--split", default=None, help="default: the config's train_split")
    p.add_argument("--rounds", type=int, default=5, help="counted rounds (one warm-up round before)")
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from fasterseg.config import load_config
    from fasterseg.data import transforms as current
    from fasterseg.data.registry import build_dataset
    from fasterseg.data.splits import as_split_list
    from fasterseg.train.config import TrainConfig

    cfg = load_config(TrainConfig, REPO / args.config, [])
    split = args.split or as_split_list(cfg.data.train_split)[0]
    data = build_dataset(cfg.data.spec, split)
    frames = [data[i][:2] for i in range(min(args.images, len(data)))]
    transforms = {"baseline": build(module_at(args.baseline), cfg, data.info.ignore_index),
                  "current": build(current, cfg, data.info.ignore_index)}

    worst_image = label_mismatch = 0.0
    for i, (image, label) in enumerate(frames):
        a, b = (t(image, label, torch.Generator().manual_seed(i)) for t in transforms.values())
        worst_image = max(worst_image, float((a[0] - b[0]).abs().max()))
        label_mismatch += float((a[1] != b[1]).float().mean()) / len(frames)

    times: dict[str, list[float]] = {name: [] for name in transforms}
    for round_ in range(args.rounds + 1):
        for name, transform in transforms.items():
            ms = ms_per_image(transform, frames, seed=1000 * round_)
            if round_:
                times[name].append(ms)
    base, now = statistics.median(times["baseline"]), statistics.median(times["current"])
    print(f"# augmentation of {args.config} on {cfg.data.spec} {split}, {len(frames)} frames, {args.threads} thread(s), "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {date.today()}")
    print("| augmentation | ms per image (median of rounds) | vs baseline |\n|---|---|---|")
    print(f"| {args.baseline} | {base:.1f} | 1.00x |")
    print(f"| current | {now:.1f} | {base / now:.2f}x faster |")
    print(f"outputs: largest image difference {worst_image:.2e} (normalised units), labels differ at "
          f"{100 * label_mismatch:.4f}% of pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
