"""``fasterseg import-official``: convert a released arch_*.pt (+ weights) to our model file."""

from __future__ import annotations

import argparse

NAME = "import-official"
HELP = "convert an official FasterSeg arch_*.pt and weights*.pt into a fasterseg model file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True, metavar="ARCH.pt", help="official arch_0.pt (teacher) or arch_1.pt (student)")
    p.add_argument("--weights", metavar="WEIGHTS.pt", help="official weights0.pt / weights1.pt state dict (default: freshly initialised)")
    role = p.add_mutually_exclusive_group()
    role.add_argument("--teacher", dest="role", action="store_const", const="teacher", help="derive as the teacher (no skips, full width)")
    role.add_argument("--student", dest="role", action="store_const", const="student", help="derive as the student (searched widths)")
    p.add_argument("--out", required=True, metavar="MODEL.safetensors", help="where to write the model file")
    from fasterseg.commands.common import parse_size

    p.add_argument("--train-size", type=parse_size, default=(1024, 2048),
                   help="training resolution recorded in the file (HxW, default 1024x2048)")


def run(args: argparse.Namespace) -> int:
    from fasterseg.data.labels import CITYSCAPES_CLASSES
    from fasterseg.modelfile import ModelMeta, save_model
    from fasterseg.nets.network import FasterSegNet, init_weights
    from fasterseg.nets.official import (
        OFFICIAL_NUM_CLASSES, convert_official_state_dict, has_aux_heads, load_official_arch,
        official_genotype, safe_torch_load,
    )

    from fasterseg.errors import FasterSegError
    from fasterseg.utils.io import refuse_overwriting_inputs

    refuse_overwriting_inputs([args.out], [args.arch, args.weights], FasterSegError, "--out")
    train_size = tuple(args.train_size)
    arch = load_official_arch(args.arch)
    role = args.role or arch.role
    genotype = official_genotype(arch, role, num_classes=OFFICIAL_NUM_CLASSES)
    if args.weights:
        state = safe_torch_load(args.weights)
        model = FasterSegNet(genotype, aux_heads=has_aux_heads(state) if isinstance(state, dict) else True)
        converted, report = convert_official_state_dict(state, model, source=args.weights)
        model.load_state_dict(converted)
        if report.dropped_unused:
            print(f"note: dropped {len(report.dropped_unused)} official tensor(s) the official forward never uses: "
                  + ", ".join(report.dropped_unused))
        if report.merged_shared:
            print(f"note: {len(report.merged_shared)} tensor(s) of cells shared between branches were stored once")
    else:
        model = FasterSegNet(genotype, aux_heads=True)
        init_weights(model)
        print("note: no --weights given; the model is freshly initialised")
    meta = ModelMeta(genotype=genotype, class_names=CITYSCAPES_CLASSES, train_size=train_size,
                     extra={"source": "official FasterSeg release", "role": role, "arch": str(args.arch),
                            "weights": str(args.weights) if args.weights else None})
    out = save_model(args.out, model, meta)
    ends = ", ".join(f"1/{2 ** (e + 3)}" for e in genotype.ends)
    print(f"wrote {out}: {role}, branches {ends}, {sum(p.numel() for p in model.parameters()):,} parameters")
    return 0
