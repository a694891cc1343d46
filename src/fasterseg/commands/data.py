"""``fasterseg data``: dataset tools; ``fasterseg data synth`` writes the synthetic street scenes."""

from __future__ import annotations

import argparse
import sys

from fasterseg.commands.common import parse_size

NAME = "data"
HELP = "dataset tools: generate the synthetic street-scene set (synth)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", metavar="TOOL", parser_class=type(p))
    sub.required = True
    s = sub.add_parser("synth", help="write procedural street scenes in the Cityscapes layout",
                       description="write procedural street scenes in the Cityscapes layout (images, labelIds, "
                                   "instanceIds, colour PNGs); read them back with --data synth:DIR")
    s.add_argument("--out", required=True, metavar="DIR", help="output folder (Cityscapes layout)")
    s.add_argument("--train", type=int, default=160, help="training scenes (default: 160)")
    s.add_argument("--val", type=int, default=40, help="validation scenes (default: 40)")
    s.add_argument("--size", type=parse_size, default=(256, 512), help="HEIGHTxWIDTH (default: 256x512)")
    s.add_argument("--seed", type=int, default=0, help="the same seed writes the same files (default: 0)")


def run(args: argparse.Namespace) -> int:
    from fasterseg.data.synth import SynthConfig, generate

    cfg = SynthConfig(out=args.out, train=args.train, val=args.val, size=args.size, seed=args.seed)
    counts = generate(cfg, progress=sys.stderr.isatty())
    h, w = cfg.size
    print(f"wrote {counts['train']} train and {counts['val']} val scenes of {h}x{w} to {args.out} "
          f"(use --data synth:{args.out})")
    return 0
