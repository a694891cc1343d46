"""Training images/s of CamVid recipes, through the trainer itself, interleaved round by round in
one process so that a noisy shared machine slows every setting alike.

Each setting is a training config (a YAML file plus ``--set`` overrides); a round runs one epoch
of ``--iters`` iterations of every setting in turn with ``fasterseg.train.trainer.train`` (data,
augmentation, model, loss, optimiser step: what a real run pays; validation off) and reads the
epoch's seconds from its log. The first round is a warm-up and is not counted. Defaults compare
the 180-epoch recipe (configs/train/camvid_sgd180.yaml) with the from-scratch peers' recipe
(configs/train/camvid_scratch.yaml) and the levers tried on it.

    python benchmarks/recipe_speed.py [--rounds 4] [--iters 8] [--threads 2] [--json F] [--md F]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
GENOTYPE = REPO / "benchmarks" / "results" / "camvid_cpu_search" / "student.json"

# name -> (config file, overrides)
SETTINGS = {
    "camvid_sgd180.yaml (288x384, SGD, OHEM, aux heads)": ("configs/train/camvid_sgd180.yaml", []),
    "camvid_scratch.yaml (360x480, Adam, class weights, aux heads)": ("configs/train/camvid_scratch.yaml", []),
    "camvid_scratch.yaml without aux heads": ("configs/train/camvid_scratch.yaml", ["loss.aux_weight=0"]),
    "camvid_scratch.yaml, one loader process": ("configs/train/camvid_scratch.yaml", ["data.workers=1"]),
    # progressive resizing's early epochs (data.resize_schedule), without aux heads
    "camvid_scratch.yaml without aux heads, at 0.75x": ("configs/train/camvid_scratch.yaml",
                                                        ["loss.aux_weight=0", "data.resize_schedule=[[0, 0.75]]"]),
    "camvid_scratch.yaml without aux heads, at 0.5x": ("configs/train/camvid_scratch.yaml",
                                                       ["loss.aux_weight=0", "data.resize_schedule=[[0, 0.5]]"]),
    # the chosen recipe's full-size epochs in oneDNN's blocked NHWC layout (the default) and in plain NCHW: on a CPU
    # without bf16 units the recipe trains in fp32, where the layout's gain is not a given
    "camvid.yaml at full size, channels_last": ("configs/train/camvid.yaml", ["data.resize_schedule=[]"]),
    "camvid.yaml at full size, contiguous": ("configs/train/camvid.yaml", ["data.resize_schedule=[]", "channels_last=false"]),
    "camvid.yaml at 0.5x, channels_last": ("configs/train/camvid.yaml", ["data.resize_schedule=[[0, 0.5]]"]),
    "camvid.yaml at 0.5x, contiguous": ("configs/train/camvid.yaml", ["data.resize_schedule=[[0, 0.5]]", "channels_last=false"]),
}


def one_epoch(name: str, config: str, overrides: list[str], iters: int, out: Path, cache: Path, round_: int) -> float:
    """Seconds of one epoch of ``iters`` iterations of this setting (a fresh run folder)."""
    from fasterseg.config import load_config
    from fasterseg.train.config import TrainConfig
    from fasterseg.train.trainer import train

    run = f"r{round_}_{abs(hash(name)) % 10**8}"
    cfg = load_config(TrainConfig, REPO / config, overrides + [
        f"genotype={GENOTYPE}", f"out_dir={out}", f"name={run}", "epochs=1", f"iters_per_epoch={iters}", "val_every=-1",
        f"data.cache_dir={cache}", "log_every=1000"])
    result = train(cfg, show_progress=False)
    return result.history[0]["seconds"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4, help="rounds, the first one a warm-up (default 4)")
    p.add_argument("--iters", type=int, default=8, help="iterations per setting and round (default 8)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--only", nargs="*", default=None, help="names (substrings) of the settings to time")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--md", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    settings = {k: v for k, v in SETTINGS.items() if not args.only or any(o in k for o in args.only)}
    times: dict[str, list[float]] = {k: [] for k in settings}
    batch: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="recipe-speed-") as tmp:
        out, cache = Path(tmp) / "runs", Path(tmp) / "cache"
        for r in range(args.rounds):
            for name, (config, overrides) in settings.items():
                seconds = one_epoch(name, config, overrides, args.iters, out, cache, r)
                from fasterseg.config import load_config
                from fasterseg.train.config import TrainConfig

                batch[name] = load_config(TrainConfig, REPO / config, overrides).batch_size
                if r:
                    times[name].append(seconds)
                print(f"round {r + 1}/{args.rounds} {name}: {seconds:.2f} s", file=sys.stderr)
    base = next(iter(settings))
    rows = []
    for name in settings:
        median = statistics.median(times[name])
        rows.append({"setting": name, "images_per_s": args.iters * batch[name] / median, "seconds_per_iter": median / args.iters,
                     "rounds": times[name]})
    ref = rows[0]["images_per_s"]
    lines = [f"| setting | images/s | s/iteration | vs {base.split(' ')[0]} |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['setting']} | {row['images_per_s']:.1f} | {row['seconds_per_iter']:.3f} | "
                     f"{row['images_per_s'] / ref:.2f}x |")
    table = "\n".join(lines)
    header = (f"{date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{args.threads} thread(s), {args.rounds - 1} counted rounds of {args.iters} iterations")
    print(header)
    print(table)
    if args.md:
        args.md.write_text(header + "\n\n" + table + "\n")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
