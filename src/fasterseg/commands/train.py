"""``fasterseg train``: train a derived network from scratch (optionally distilled from a teacher)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

NAME = "train"
HELP = "train a derived network (genotype) from scratch, optionally with distillation from a teacher"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fasterseg.commands.common import add_run_arguments

    p.add_argument("--genotype", help="genotype JSON (or a model file whose genotype to train)")
    p.add_argument("--data", help="dataset spec KIND:PATH, e.g. camvid:../shared/data/camvid")
    p.add_argument("--teacher", help="model file of a trained teacher: adds the distillation loss")
    p.add_argument("--init", metavar="MODEL.safetensors",
                   help="start from this model's weights (fine-tuning); its classes are matched by name")
    add_run_arguments(p, "YAML config (see configs/train/); defaults are the paper's recipe",
                      "--set epochs=10 --set optim.lr=0.02", "continue the interrupted run in directory RUN exactly")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from fasterseg.config import load_config
    from fasterseg.train.config import TrainConfig
    from fasterseg.train.trainer import train
    from fasterseg.errors import TrainingError

    overrides = list(args.overrides)
    if args.resume:
        run_dir = Path(args.resume)
        config_path = run_dir / "config.yaml"
        if not config_path.is_file():
            raise TrainingError(f"{run_dir}: not a training run (no config.yaml)")
        if args.config or args.genotype or args.data or args.teacher or args.init:
            raise TrainingError("--resume continues a run with its own config; change settings with --set only")
        overrides += [f"name={run_dir.name}", f"out_dir={run_dir.parent}"]
        cfg = load_config(TrainConfig, config_path, overrides)
    else:
        if args.genotype:
            overrides.append(f"genotype={args.genotype}")
        if args.data:
            overrides.append(f"data.spec={args.data}")
        if args.teacher:
            overrides.append(f"teacher={args.teacher}")
        if args.init:
            overrides.append(f"init={args.init}")
        if args.name:
            overrides.append(f"name={args.name}")
        if args.out_dir:
            overrides.append(f"out_dir={args.out_dir}")
        cfg = load_config(TrainConfig, args.config, overrides)
    result = train(cfg, resume=bool(args.resume), show_progress=not args.quiet)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only the first process reports
    best = f"{100 * result.best_miou:.2f}" if result.best_miou is not None else "n/a"
    print(f"done: {result.run_dir} (best val mIoU {best}); model: {result.model_path}")
    return 0
