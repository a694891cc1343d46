"""``fasterseg eval``: score predictions against a dataset split (the official Cityscapes numbers)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fasterseg.commands.common import add_calibration_arguments, calibration_from_args, device_name, parse_size, positive_float

NAME = "eval"
HELP = "evaluate prediction PNGs against a dataset split: IoU/iIoU table, JSON, CSV, plots"


def add_arguments(p: argparse.ArgumentParser) -> None:
    # What is scored: a folder of predictions (a model, scored by the same evaluator, can join this group).
    source = p.add_mutually_exclusive_group(required=False)
    source.add_argument("--pred-dir", metavar="DIR",
                        help="prediction PNGs, one per ground-truth image, matched by name (searched recursively); "
                             "a folder fasterseg predict wrote is scored through its labels/ (or label_ids/ with --ids label)")
    source.add_argument("--model", metavar="MODEL.safetensors",
                        help="a fasterseg model file: predict and score (default without --pred-dir: the built-in CamVid student)")
    p.add_argument("--data", metavar="SPEC",
                   help="dataset spec KIND:PATH, e.g. cityscapes:/data/cityscapes (with --model: default the data the model "
                        "file records, as the built-in model's camvid:../shared/data/camvid)")
    p.add_argument("--split", default="val", help="split to evaluate (default: val)")
    p.add_argument("--ids", choices=("label", "train"), default=None,
                   help="Cityscapes layouts: predictions hold label ids (as the benchmark expects) or train ids "
                        "(default: label, or what a fasterseg predict folder holds)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="OUT.json",
                   help="write the numbers as JSON to OUT.json (or stdout when no file is given)")
    p.add_argument("--csv", metavar="OUT.csv", default=None, help="also write the numbers as CSV")
    p.add_argument("--plots", metavar="DIR", default=None,
                   help="also draw class_iou.png and confusion.png into DIR")
    p.add_argument("--device", type=device_name, default="cpu", help="torch device the model runs on (with --model; default: cpu). "
                        "Counting is NumPy on the host, so --pred-dir never imports torch")
    p.add_argument("--workers", type=int, default=4, help="threads decoding PNGs (default: 4)")
    model = p.add_argument_group("model inference (with --model)")
    model.add_argument("--scales", type=positive_float, nargs="+", default=[1.0], help="multi-scale inference, e.g. 0.75 1 1.25")
    model.add_argument("--flip", action="store_true", help="average with the horizontally flipped image")
    model.add_argument("--window", type=parse_size, default=None, metavar="HxW",
                       help="sliding-window inference with windows of this size (default: whole image)")
    from fasterseg.backends import PRECISION_NAMES, backend_names, canonical

    model.add_argument("--backend", type=canonical, choices=backend_names(), default="eager",
                       help="deploy path the model runs on, so a lossy path is scored by the real evaluator (default eager; "
                            "other paths take the whole image, without --scales/--flip/--window)")
    model.add_argument("--precision", choices=PRECISION_NAMES, default="fp32", help="with --backend: its precision (default fp32)")
    from fasterseg.commands.common import add_label_path_argument

    add_label_path_argument(model, "exact")  # the evaluator's reference; name a faster path to score it
    add_calibration_arguments(model)


def model_predictor(args: argparse.Namespace, dataset):
    """``predict(i)`` for ``eval --model``: the model file checked against the dataset, with the
    chosen views (the inference itself is :func:`fasterseg.infer.views.dataset_predictor`)."""
    import fasterseg
    from fasterseg.errors import EvaluationError
    from fasterseg.infer.views import InferenceOptions, dataset_predictor

    model = fasterseg.load_model(args.model, device=args.device)
    classes = model.num_classes
    if classes != dataset.info.num_classes:
        raise EvaluationError(f"{args.model}: the model predicts {classes} classes but {args.data} has {dataset.info.num_classes}")
    options = InferenceOptions(scales=tuple(args.scales), flip=args.flip, window=args.window)
    if args.backend == "eager" and args.precision == "fp32" and args.label_path == "exact":
        return dataset_predictor(model, dataset, options, args.device)
    if options != InferenceOptions():
        raise EvaluationError(f"--backend {args.backend} --label-path {args.label_path}: a deploy path gives labels, not "
                              "the probabilities that --scales/--flip/--window average; use them with the eager backend "
                              "and the exact label path")
    from fasterseg.infer.runners import RunnerOptions, build_runner

    calibration = calibration_from_args(args, classes)
    runner = build_runner(model, RunnerOptions(args.backend, device=args.device, precision=args.precision, compile=False,
                                               calibration=calibration, label_path=args.label_path))
    return dataset_predictor(model, dataset, options, args.device, runner=runner)


def score(args: argparse.Namespace, dataset):
    """The result for the chosen source of predictions."""
    from fasterseg.evaluate.predictions import evaluate_predictions

    if args.model:
        from fasterseg.evaluate.scorer import score_dataset

        return score_dataset(model_predictor(args, dataset), dataset, ids="train", progress=sys.stderr.isatty())
    from fasterseg.evaluate.predictions import resolve_prediction_folder

    folder, ids, note = resolve_prediction_folder(args.pred_dir, args.ids)
    if note:
        print(note, file=sys.stderr)
    return evaluate_predictions(folder, dataset, ids=ids, workers=args.workers, progress=sys.stderr.isatty(),
                                warn=lambda m: print(f"warning: {m}", file=sys.stderr))


def report(args: argparse.Namespace, dataset, result) -> None:
    """Table on stdout (or JSON with a bare --json); files for --json FILE, --csv, --plots."""
    from fasterseg.evaluate.report import (
        format_table, plot_class_iou, plot_confusion, to_json_dict, write_csv, write_json,
    )

    if args.json == "-":
        print(json.dumps(to_json_dict(result), indent=2))
    else:
        print(f"{len(dataset)} images of {args.data} ({args.split})")
        print(format_table(result))
        if args.json:
            print(f"wrote {write_json(result, args.json)}", file=sys.stderr)
    if args.csv:
        print(f"wrote {write_csv(result, args.csv)}", file=sys.stderr)
    if args.plots:
        out = Path(args.plots)
        print(f"wrote {plot_class_iou(result, out / 'class_iou.png')} and {plot_confusion(result, out / 'confusion.png')}",
              file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from fasterseg.data.registry import build_dataset

    if not args.pred_dir and not args.model:
        from fasterseg.models import builtin_model_path

        args.model = str(builtin_model_path())
        print(f"model: the built-in CamVid model (camvid, {args.model}); --model chooses another", file=sys.stderr)

    from fasterseg.errors import EvaluationError
    from fasterseg.utils.io import check_writable

    for target, is_dir in ((args.json, False), (args.csv, False), (args.plots, True)):
        if target and target != "-":  # before scoring: an unwritable path would lose the work
            check_writable(Path(target), EvaluationError, is_dir)
    meta = _model_meta(args.model) if args.model else None
    if not args.data:
        args.data = (meta.extra.get("data") if meta else None) or ""
        if not args.data:
            raise EvaluationError("--data SPEC is needed: " + ("a prediction folder names no dataset" if args.pred_dir else
                                                                f"{args.model} records no data spec"))
        print(f"data: {args.data} (recorded in {args.model})", file=sys.stderr)
    dataset = build_dataset(args.data, args.split)
    _refuse_overwriting_what_is_scored(args, dataset)
    report(args, dataset, score(args, dataset))
    if meta is not None:
        for line in seen_in_training(meta, args.data, dataset):
            print(line)
    return 0


def _refuse_overwriting_what_is_scored(args: argparse.Namespace, dataset) -> None:
    """--json, --csv and --plots must not land on a prediction, label or image being scored."""
    from fasterseg.errors import EvaluationError
    from fasterseg.utils.io import refuse_overwriting_inputs

    outputs = [Path(p) for p in (args.json, args.csv) if p and p != "-"]
    if args.plots:
        outputs += [Path(args.plots) / "class_iou.png", Path(args.plots) / "confusion.png"]
    if not outputs:
        return
    inputs = [p for pair in getattr(dataset, "pairs", []) for p in pair]
    if args.pred_dir and Path(args.pred_dir).is_dir():
        inputs += list(Path(args.pred_dir).rglob("*.png"))
    if args.model:
        inputs.append(Path(args.model))
    names = {p.name for p in outputs}
    refuse_overwriting_inputs(outputs, [p for p in inputs if Path(p).name in names], EvaluationError,
                              "--json/--csv/--plots")


def _model_meta(path: str):
    from fasterseg.modelfile import read_model_meta

    return read_model_meta(path)


def seen_in_training(meta, spec: str, dataset) -> list[str]:
    """Lines that say when the scored frames were among the model's training frames (the model
    file records its training splits), with the held-out score the file records beside it."""
    from fasterseg.data.registry import build_dataset
    from fasterseg.errors import FasterSegError

    splits = meta.extra.get("train_split")
    if not splits:
        return []
    splits = [splits] if isinstance(splits, str) else list(splits)
    try:
        trained = {ds.name(i) for ds in (build_dataset(spec, s) for s in splits) for i in range(len(ds))}
    except (FasterSegError, OSError, ValueError):
        return []  # the training splits are not in this dataset: nothing to compare
    names = [dataset.name(i) for i in range(len(dataset))]
    seen = sum(name in trained for name in names)
    if not seen:
        return []
    lines = [f"note: {seen} of these {len(names)} frames were among the model's training frames "
             f"(train split {', '.join(splits)}): this score is not held out"]
    if meta.extra.get("heldout_mIoU") is not None:
        note = meta.extra.get("heldout_note", "")
        lines.append(f"      held-out score recorded in the model file: {100 * float(meta.extra['heldout_mIoU']):.1f} mIoU"
                     + (f" ({note})" if note else ""))
    return lines
