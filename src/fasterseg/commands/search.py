"""``fasterseg search``: one phase (pretraining or search) of the teacher/student co-search."""

from __future__ import annotations

import argparse

NAME = "search"
HELP = "pretrain or search the supernet (one phase per call); writes weights, arch params and logs to --out"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", default=None, help="YAML search config (defaults: the paper's pretraining)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override a config value, e.g. --set epochs=2 --set supernet.layers=8 (repeatable)")
    p.add_argument("--out", metavar="RUN_DIR", required=True, help="run directory (created; must not hold another run)")
    p.add_argument("--init", metavar="WEIGHTS", default=None,
                   help="start from a saved supernet, e.g. the pretraining run's weights.safetensors")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out exactly")
    p.add_argument("--device", default="cpu", help="torch device (default cpu); under torchrun cuda means cuda:LOCAL_RANK")


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    import torch

    from fasterseg.config import ConfigError, load_config
    from fasterseg.search.distributed import init_from_env, rank
    from fasterseg.search.loop import SearchConfig, run_search

    cfg = load_config(SearchConfig, args.config, args.set)
    weighted = {a: w for a, w in cfg.latency_weights.items() if w > 0}
    if not cfg.pretrain and weighted:
        raise ConfigError(
            f"latency_weights: {weighted} needs a latency model, and none is wired into the command yet; "
            "set them to 0 (e.g. --set latency_weights.student=0) or call fasterseg.search.loop.run_search "
            "with latency_fn and genotype_latency"
        )
    distributed = init_from_env()
    out = Path(args.out)
    if not args.resume and (out / "config.yaml").exists():
        raise ConfigError(f"{out}: already holds a run; use --resume to continue it or choose another --out")
    device = args.device
    if distributed:
        torch.distributed.barrier()  # every process has looked at --out before the first one writes
        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    records = run_search(cfg, out, init_weights=args.init, device=device, resume=args.resume)
    if rank() == 0:
        for r in records:
            print(f"epoch {r.epoch}: weight loss {r.weight_loss:.4f}"
                  + ("" if r.arch_loss is None else f", arch loss {r.arch_loss:.4f}"))
        print(f"run written to {out}")
    return 0
