"""``fasterseg export``: write a model as ONNX, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import argparse
from pathlib import Path

from fasterseg.commands.common import add_calibration_arguments, calibration_from_args, parse_size

NAME = "export"
HELP = "export a model to ONNX (opset >= 17; fp32, or int8 calibrated on real images) and check it with onnxruntime"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="MODEL.safetensors", help="the model file to export")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="where to write the graph")
    p.add_argument("--size", type=parse_size, default=None,
                   help="input HEIGHTxWIDTH (default: the model's training size, else 1024x2048)")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width (the size is then only an example)")
    p.add_argument("--output", choices=["logits", "labels", "logits8"], default="logits",
                   help="logits at input size (default), labels (fused argmax; --label-path says how) or logits8 (network only, 1/8 scale)")
    p.add_argument("--argmax", dest="output", action="store_const", const="labels", help="same as --output labels")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 17 (default 18)")
    from fasterseg.backends import DEFAULT_LABEL_PATH
    from fasterseg.commands.common import add_label_path_argument

    add_label_path_argument(p, DEFAULT_LABEL_PATH)
    p.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into the convolutions before export")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the onnxruntime comparison")
    p.add_argument("--tolerance", type=float, default=1e-3, help="largest allowed |onnx - torch| on logits (default 1e-3)")
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32",
                   help="fp32 (default), or int8: a QDQ graph (per-channel int8 weights, uint8 activations calibrated "
                        "on --calib images) that ONNX Runtime and OpenVINO run in int8")
    add_calibration_arguments(p)


def run(args: argparse.Namespace) -> int:
    from fasterseg.backends import label_path_for
    from fasterseg.infer.export import export_onnx, model_metadata
    from fasterseg.infer.fold import fold_for_deploy
    from fasterseg.errors import FasterSegError
    from fasterseg.modelfile import load_model
    from fasterseg.utils.io import check_writable, refuse_overwriting_inputs

    refuse_overwriting_inputs([args.out], [args.model], FasterSegError, "--out")
    check_writable(Path(args.out), FasterSegError)
    model = load_model(args.model)
    if args.precision == "int8":
        return _export_int8(args, model)
    size = args.size or (model.meta.train_size if model.meta and model.meta.train_size else (1024, 2048))
    if args.fold_bn:
        model = fold_for_deploy(model)
    label_path = label_path_for(args.label_path, size[0])  # a graph runs one path: auto picks it from --size
    report = export_onnx(model, args.out, size=tuple(size), dynamic=args.dynamic, output=args.output,
                         opset=args.opset, check=args.check, tolerance=args.tolerance,
                         metadata=model_metadata(model.meta, args.output, label_path), label_path=label_path)
    print(report.summary() if args.check else f"wrote {report.path} (opset {report.opset}, not checked)")
    return 0


def _export_int8(args: argparse.Namespace, model) -> int:
    """fp32 graph (checked against PyTorch) -> QDQ int8 graph at ``--out``; then how far the int8
    graph's output is from the fp32 graph's on the calibration images. Static graphs are calibrated
    at the size they accept: without ``--size``, the calibration images' own."""
    import tempfile

    from fasterseg.backends import label_path_for
    from fasterseg.infer.export import export_onnx, model_metadata
    from fasterseg.infer.fold import fold_for_deploy
    from fasterseg.infer.quantize import compare_graphs, quantize_onnx

    calibration = calibration_from_args(args, model.num_classes, None if args.dynamic else args.size)
    label_path = label_path_for(args.label_path, calibration.size[0])
    with tempfile.TemporaryDirectory(prefix="fasterseg-export-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(fold_for_deploy(model), fp32, size=calibration.size, dynamic=args.dynamic, output=args.output,
                    opset=args.opset, check=args.check, tolerance=args.tolerance,
                    metadata=model_metadata(model.meta, args.output, label_path), label_path=label_path)
        quantize_onnx(fp32, args.out, calibration)
        agreement = compare_graphs(fp32, Path(args.out), calibration, args.output)
    kind = "dynamic N, H, W" if args.dynamic else f"{calibration.size[0]}x{calibration.size[1]}"
    print(f"wrote {args.out} (int8 QDQ, opset {args.opset}, {kind}, output {args.output}; calibrated on "
          f"{calibration.describe()}); against the fp32 graph on those images: {agreement}")
    return 0
