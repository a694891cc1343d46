"""``fasterseg train``: train a derived network, or a registered one, from scratch (optionally
distilled from a teacher)."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a derived network (genotype) or a registered one from scratch, optionally with distillation from a teacher"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fasterseg.commands.common import add_run_arguments

    p.add_argument("--genotype", help="genotype JSON (or a model file whose genotype to train)")
    p.add_argument("--network", help="a registered network instead of a genotype, e.g. ddrnet23_slim or bisenetv2 "
                                     "(fasterseg info --networks)")
    p.add_argument("--data", help="dataset spec KIND:PATH, e.g. camvid:../shared/data/camvid")
    p.add_argument("--teacher", help="model file of a trained teacher: adds the distillation loss")
    p.add_argument("--init", metavar="MODEL.safetensors",
                   help="start from this model's weights (fine-tuning); its classes are matched by name")
    add_run_arguments(p, "YAML config (see configs/train/); defaults are the paper's recipe",
                      "--set epochs=10 --set optim.lr=0.02", "continue the interrupted run in directory RUN exactly")
    p.add_argument("--continue-from", metavar="COMPACT.safetensors",
                   help="continue a run on another machine from its compact checkpoint (compact_every): lays out "
                        "the run folder (--name/--out-dir, default the run's own) and resumes it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from fasterseg.commands.common import load_run_config
    from fasterseg.train.config import TrainConfig
    from fasterseg.train.trainer import train

    flags = {"genotype": "genotype", "network": "network", "data": "data.spec", "teacher": "teacher", "init": "init"}
    if args.continue_from:
        _lay_out_continued_run(args)
    cfg = load_run_config(TrainConfig, args, flags, "training")
    result = train(cfg, resume=bool(args.resume), show_progress=not args.quiet)
    from fasterseg.distributed import launched_rank

    if launched_rank() != 0:
        return 0  # under torchrun only the first process reports
    best = f"{100 * result.best_miou:.2f}" if result.best_miou is not None else "n/a"
    print(f"done: {result.run_dir} (best val mIoU {best}); model: {result.model_path}")
    return 0


def _lay_out_continued_run(args: argparse.Namespace) -> None:
    """``--continue-from FILE``: build the run folder from the compact checkpoint, then go on as
    ``--resume`` of that folder (which refuses the flags that would change the run)."""
    from pathlib import Path

    from fasterseg.errors import ConfigError
    from fasterseg.train.compact import read_compact, unpack_run

    if args.resume:
        raise ConfigError("--continue-from and --resume both name the run to continue; give one")
    record = read_compact(Path(args.continue_from))[1]
    run_dir = Path(args.out_dir or record.config.get("out_dir", "runs")) / (args.name or record.config.get("name", "train"))
    unpack_run(Path(args.continue_from), run_dir)
    args.resume, args.name, args.out_dir = str(run_dir), None, None
