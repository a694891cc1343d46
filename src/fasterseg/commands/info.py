"""``fasterseg info``: parameters, MACs, structure table and diagram of a model or genotype."""

from __future__ import annotations

import argparse
import json

from fasterseg.commands.common import parse_size

NAME = "info"
# What a model file's header says about how it was made, printed when present.
PROVENANCE = ("command", "data", "train_split", "val_split", "epochs", "trained", "weights", "val_mIoU",
              "val_frames_seen_in_training", "heldout_mIoU", "heldout_note", "latency", "init", "note")
HELP = "describe a model file or genotype: parameters, MACs, structure, diagram"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="MODEL_OR_GENOTYPE", nargs="?", help="a .safetensors model file or a genotype .json")
    p.add_argument("--networks", action="store_true",
                   help="list the networks `fasterseg train --network` takes (besides FasterSeg genotypes)")
    p.add_argument("--models", action="store_true",
                   help="list the built-in models by short name, with their held-out score and latency (to pick one)")
    p.set_defaults(_usage_error=p.error)  # a missing source is bad usage (exit 2), as argparse says it
    p.add_argument("--size", type=parse_size, default=None,
                   help="input HEIGHTxWIDTH for the MAC count (default: the model's training size, else 1024x2048)")
    p.add_argument("--plot", metavar="OUT.png", default=None, help="also draw the architecture diagram")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead of text")


def run(args: argparse.Namespace) -> int:
    if args.networks:
        from fasterseg.nets.registry import GENOTYPE_NETWORK, REGISTRY

        print(f"{GENOTYPE_NETWORK:<15} a FasterSeg network from its genotype (--genotype G.json; searched by `fasterseg search`)")
        for entry in REGISTRY.values():
            print(f"{entry.name:<15} {entry.summary}")
        return 0
    if args.models:
        return _builtin_models()
    if not args.source:
        args._usage_error("give MODEL_OR_GENOTYPE (a model file or genotype), or --networks or --models")
    from pathlib import Path

    from fasterseg.modelfile import load_genotype_and_meta, read_model_meta
    from fasterseg.nets.summary import network_stats, plot_architecture, structure_table

    if Path(args.source).suffix.lower() != ".json":
        meta = read_model_meta(args.source)
        if meta.genotype is None:
            return _registered(args, meta)
    genotype, meta = load_genotype_and_meta(args.source)
    size = args.size or (meta.train_size if meta and meta.train_size else (1024, 2048))
    stats = network_stats(genotype, tuple(size))
    if args.json:
        print(json.dumps({
            "source": args.source,
            "params": stats.params,
            "params_with_aux_heads": stats.params_with_aux,
            "macs": stats.macs,
            "size": list(stats.size),
            "genotype": genotype.to_dict(),
        }, indent=2))
    else:
        ends = ", ".join(f"1/{2 ** (e + 3)}" for e in genotype.ends)
        print(f"{args.source}")
        print(f"  branches            {ends}")
        print(f"  classes             {genotype.num_classes}")
        if genotype.input_norm != "dataset":
            print(f"  input norm          {genotype.input_norm} (each image standardised per channel before the stem)")
        if genotype.output_stride != 8:
            print(f"  output stride       {genotype.output_stride} (the 1/8 scores refined at 1/4 with the stem's 1/4 features)")
        print(f"  parameters          {stats.params:,} (inference)  {stats.params_with_aux:,} (with auxiliary heads)")
        print(f"  MACs at {stats.size[0]}x{stats.size[1]}  {stats.macs / 1e9:.2f} G ({stats.macs:,})")
        if meta is not None:
            print(f"  training size       {meta.train_size[0]}x{meta.train_size[1]}" if meta.train_size else "  training size       unknown")
            for key in PROVENANCE:
                if key in meta.extra:
                    print(f"  {key.replace('_', ' '):<19} {meta.extra[key]}")
        print()
        print(structure_table(genotype))
    if args.plot:
        out = plot_architecture(genotype, args.plot)
        print(f"wrote {out}")
    return 0


def _builtin_models() -> int:
    """One line per built-in model: what its header says about accuracy on unseen frames and speed."""
    from fasterseg.modelfile import read_model_meta
    from fasterseg.models import builtin_models

    models = builtin_models()
    if not models:
        print("no built-in models in this installation")
        return 0
    print(f"{'name':<10} {'classes':>7}  {'held-out mIoU':>13}  latency (fastest CPU path where measured)")
    for name, path in models.items():
        meta = read_model_meta(path)
        heldout = meta.extra.get("heldout_mIoU")
        if heldout is None and not meta.extra.get("val_frames_seen_in_training", True):
            heldout = meta.extra.get("val_mIoU")  # validated on frames it never trained on
        score = f"{100 * heldout:.1f}" if heldout is not None else "-"
        print(f"{name:<10} {meta.num_classes:>7}  {score:>13}  {meta.extra.get('latency', 'not recorded')}")
        print(f"{'':<10} {path}")
    return 0


def _registered(args: argparse.Namespace, meta) -> int:
    """A registered network's model file: its parameters and MACs (counted by PyTorch's FLOP
    counter on shapes alone), training size and provenance."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fasterseg.modelfile import network_for
    from fasterseg.nets.network import count_parameters

    if args.plot:
        from fasterseg.errors import FasterSegError

        raise FasterSegError(f"--plot: {meta.network} is not a FasterSeg genotype network; there is no cell diagram to draw")
    size = tuple(args.size or meta.train_size or (1024, 2048))
    with torch.device("meta"):
        net = network_for(meta).eval()
        image = torch.empty(1, 3, *size)
    with FlopCounterMode(display=False) as flops:
        net(image)
    macs = flops.get_total_flops() // 2
    params, with_aux = count_parameters(net, include_aux=False), count_parameters(net)
    if args.json:
        print(json.dumps({"source": args.source, "network": meta.network, "params": params,
                          "params_with_aux_heads": with_aux, "macs": macs, "size": list(size)}, indent=2))
        return 0
    print(args.source)
    print(f"  network             {meta.network}")
    print(f"  classes             {meta.num_classes}")
    print(f"  parameters          {params:,} (inference)  {with_aux:,} (with auxiliary heads)")
    print(f"  MACs at {size[0]}x{size[1]}  {macs / 1e9:.2f} G ({macs:,})")
    print(f"  training size       {meta.train_size[0]}x{meta.train_size[1]}" if meta.train_size else "  training size       unknown")
    for key in PROVENANCE:
        if key in meta.extra:
            print(f"  {key.replace('_', ' '):<19} {meta.extra[key]}")
    return 0
