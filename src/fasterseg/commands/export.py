"""``fasterseg export``: write a model as ONNX, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import argparse
from pathlib import Path

from fasterseg.commands.common import parse_size

NAME = "export"
HELP = "export a model to ONNX (opset >= 17) and check it against PyTorch with onnxruntime"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="MODEL.safetensors", help="the model file to export")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="where to write the graph")
    p.add_argument("--size", type=parse_size, default=None,
                   help="input HEIGHTxWIDTH (default: the model's training size, else 1024x2048)")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width (the size is then only an example)")
    p.add_argument("--output", choices=["logits", "labels", "logits8"], default="logits",
                   help="logits at input size (default), labels (fused argmax, int64) or logits8 (network only, 1/8 scale)")
    p.add_argument("--argmax", dest="output", action="store_const", const="labels", help="same as --output labels")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 17 (default 18)")
    p.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into the convolutions before export")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the onnxruntime comparison")
    p.add_argument("--tolerance", type=float, default=1e-3, help="largest allowed |onnx - torch| on logits (default 1e-3)")


def run(args: argparse.Namespace) -> int:
    from fasterseg.infer.export import export_onnx
    from fasterseg.infer.fold import fold_batchnorm
    from fasterseg.errors import FasterSegError
    from fasterseg.modelfile import load_model
    from fasterseg.utils.io import check_writable, refuse_overwriting_inputs

    refuse_overwriting_inputs([args.out], [args.model], FasterSegError, "--out")
    check_writable(Path(args.out), FasterSegError)
    model = load_model(args.model)
    size = args.size or (model.meta.train_size if model.meta and model.meta.train_size else (1024, 2048))
    if args.fold_bn:
        model = fold_batchnorm(model)
    report = export_onnx(model, args.out, size=tuple(size), dynamic=args.dynamic, output=args.output,
                         opset=args.opset, check=args.check, tolerance=args.tolerance)
    print(report.summary() if args.check else f"wrote {report.path} (opset {report.opset}, not checked)")
    return 0
