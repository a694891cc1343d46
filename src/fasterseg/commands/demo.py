"""``fasterseg demo``: the whole pipeline on the built-in synthetic set, on CPU, resumable."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "run the whole method on built-in synthetic data (CPU, about 10 min): search, train, evaluate, benchmark, export"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="output folder; run again to continue an interrupted demo")
    p.add_argument("--tiny", action="store_true", help="an even smaller setting (a couple of minutes), as the tests use")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a demo setting, e.g. --set teacher_epochs=10 (see `fasterseg config demo`)")


def run(args: argparse.Namespace) -> int:
    from fasterseg.config import load_config, to_dict
    from fasterseg.demo import DemoConfig, run_demo, tiny_demo

    base = tiny_demo() if args.tiny else DemoConfig()
    overrides = [f"{k}={v}" for k, v in to_dict(base).items() if k != "out"] + [f"out={args.out}"] + list(args.overrides)
    cfg = load_config(DemoConfig, None, overrides)
    report = run_demo(cfg)
    print(f"done: open {report}")
    return 0
