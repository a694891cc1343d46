"""``fasterseg search``: pretrain the supernet, co-search teacher and student, write genotypes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "search"
HELP = "search teacher and student networks: pretraining, then latency-aware co-search (resumable)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fasterseg.commands.common import add_run_arguments

    p.add_argument("--data", help="dataset spec KIND:PATH (train split searched, val split scored)")
    p.add_argument("--lut", help="latency table file or profile name (default: official-1080ti-trt5)")
    add_run_arguments(p, "YAML config (configs/search/*.yaml); defaults are the paper's settings",
                      "--set search.epochs=10", "continue the interrupted search in directory RUN")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for PyTorch (small supernets on small CPUs run fastest with 1)")
    p.add_argument("--pick", metavar="RUN", help="do not search: write the genotypes of one epoch of search RUN "
                   "(its search/history/) to RUN/picked/epoch_NNN/")
    p.add_argument("--epoch", type=int, help="with --pick: the epoch (counted from 1)")
    p.add_argument("--rule", default="best-miou-in-window", help="with --pick and no --epoch: last, best-miou, "
                   "or best-miou-in-window (default: the best supernet val mIoU among epochs inside the FPS window)")


def run(args: argparse.Namespace) -> int:
    from fasterseg.commands.common import load_run_config
    from fasterseg.errors import ConfigError
    from fasterseg.search.config import SearchJobConfig
    from fasterseg.search.job import run_search

    if args.pick:
        return _pick(args)
    if args.epoch is not None:
        raise ConfigError("--epoch chooses an epoch of a finished search: use it with --pick RUN")

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    job = load_run_config(SearchJobConfig, args, {"data": "data", "lut": "lut"}, "search")
    summary = run_search(job, resume=bool(args.resume))
    from fasterseg.distributed import launched_rank

    if launched_rank() != 0:
        return 0  # under torchrun only the first process reports
    for name, info in summary.items():
        ends = ", ".join(f"1/{2 ** (e + 3)}" for e in info["ends"])
        print(f"{name}: {info['genotype']} (branches {ends}; {info['latency_ms']:.2f} ms, {info['fps']:.1f} FPS from the table)")
    if not summary:
        print("no genotypes derived (the search phase needs val scores; see the run's log.csv)")
    print(json.dumps({"run": str(Path(job.out_dir) / job.name)}))
    return 0


def _pick(args: argparse.Namespace) -> int:
    from fasterseg.errors import ConfigError
    from fasterseg.search.history import pick, read_history

    if args.resume or args.config or args.data or args.lut or args.overrides:
        raise ConfigError("--pick reads a finished search; it takes only --epoch or --rule")
    run = Path(args.pick)
    chosen = pick(read_history(run / "search"), epoch=args.epoch, rule=args.rule)
    for arch, entry in chosen.items():
        out = run / "picked" / f"epoch_{entry.epoch:03d}" / f"{arch}.json"
        entry.genotype.save(out)
        print(f"{arch}: epoch {entry.epoch} -> {out} ({entry.fps:.1f} table FPS, supernet val mIoU "
              f"{100 * entry.best_miou:.2f}, latency weight {entry.latency_weight})")
        if args.epoch is None and args.rule == "best-miou-in-window" and entry.in_window is False:
            lo, hi = entry.fps_window
            print(f"note: no epoch of the {arch} was inside its FPS window [{lo:g}, {hi:g}]; epoch {entry.epoch} is the "
                  "closest to it")
    return 0
