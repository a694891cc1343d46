"""``fasterseg search``: pretrain the supernet, co-search teacher and student, write genotypes."""

from __future__ import annotations

import argparse
import os
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


def run(args: argparse.Namespace) -> int:
    from fasterseg.config import ConfigError, load_config
    from fasterseg.search.job import SearchJobConfig, run_search_job

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    overrides = list(args.overrides)
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{run_dir}: not a search run (no config.yaml)")
        if args.config or args.data or args.lut:
            raise ConfigError("--resume continues a search with its own config")
        job = load_config(SearchJobConfig, run_dir / "config.yaml",
                          overrides + [f"name={run_dir.name}", f"out_dir={run_dir.parent}"])
    else:
        for flag, key in ((args.data, "data"), (args.lut, "lut"), (args.name, "name"), (args.out_dir, "out_dir")):
            if flag:
                overrides.append(f"{key}={flag}")
        job = load_config(SearchJobConfig, args.config, overrides)
    summary = run_search_job(job, resume=bool(args.resume))
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only the first process reports
    for name, info in summary.items():
        ends = ", ".join(f"1/{2 ** (e + 3)}" for e in info["ends"])
        print(f"{name}: {info['genotype']} (branches {ends}; {info['latency_ms']:.2f} ms, {info['fps']:.1f} FPS from the table)")
    if not summary:
        print("no genotypes derived (the search phase needs val scores; see the run's log.csv)")
    print(json.dumps({"run": str(Path(job.out_dir) / job.name)}))
    return 0
