"""``fasterseg predict``: segment images, folders, globs and videos; write label maps and pictures."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager

from fasterseg.commands.common import add_calibration_arguments, calibration_from_args, device_name, parse_size

NAME = "predict"
HELP = "segment images, folders, globs or videos; write label PNGs, colour masks, overlays, a submission zip"

# Exit status when inputs failed: their number, capped so it never collides with signals (128+).
MAX_FAILED_STATUS = 100


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fasterseg.backends import PRECISION_NAMES, backend_names, canonical
    from fasterseg.infer.names import OUTPUT_KINDS

    p.add_argument("--model", default=None, metavar="MODEL.safetensors",
                   help="the model file (default: the built-in CamVid student)")
    p.add_argument("--input", required=True, nargs="+", metavar="PATH",
                   help="images, folders (searched recursively), glob patterns (quote them), videos, a camera "
                        "(camera:0), a network stream (rtsp://..., http://...) or an image sequence (frames/%%05d.png)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (one subfolder per output kind)")
    p.add_argument("--outputs", default="labels,color,overlay",
                   help=f"comma-separated kinds to write, from {','.join(OUTPUT_KINDS)} (default labels,color,overlay); "
                        "labels are train ids, label_ids Cityscapes label ids; videos always give an overlay video")
    p.add_argument("--label-ids", action="store_true", help="also write Cityscapes label-id PNGs (same as adding label_ids)")
    p.add_argument("--submission", metavar="ZIP", default=None,
                   help="also write the Cityscapes test-server archive (label-id PNGs named <image>_leftImg8bit.png)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the colour mask in overlays (default 0.5)")
    p.add_argument("--batch-size", type=int, default=1, help="images per batch (equal-size images are batched)")
    p.add_argument("--tile", type=parse_size, default=None, metavar="HxW", help="sliding-window tile size (default: whole image)")
    p.add_argument("--tile-overlap", type=float, default=0.25, help="fraction by which tiles overlap (default 0.25)")
    p.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--backend", type=canonical, choices=backend_names(), default="eager", help="deploy path (default eager)")
    p.add_argument("--precision", choices=PRECISION_NAMES, default="fp32",
                   help="of the deploy path: fp16/bf16 (optimized, openvino), int8 (onnxruntime, openvino; needs --calib) (default fp32)")
    add_calibration_arguments(p)
    p.add_argument("--compile", action="store_true", help="optimized backend: also torch.compile (slow start, faster run)")
    from fasterseg.backends import DEFAULT_LABEL_PATH
    from fasterseg.commands.common import add_label_path_argument

    add_label_path_argument(p, DEFAULT_LABEL_PATH)
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="videos and live sources: stop after N frames (cameras and streams run until stopped)")
    p.add_argument("--show", action="store_true", help="videos and live sources: show the overlay and frame rate "
                   "in a window (q or Esc stops; needs a display)")
    p.add_argument("--frame-labels", action="store_true",
                   help="videos and live sources: also write every frame's label map (labels/NAME/NNNNNN.png)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files that already exist (by default an existing file stops the run before any work)")


def run(args: argparse.Namespace) -> int:
    from fasterseg.errors import FasterSegError
    from fasterseg.infer.predict import LiveOptions, run_predict
    from fasterseg.infer.predictor import Predictor
    from fasterseg.infer.runners import RunnerOptions
    from fasterseg.modelfile import load_model
    from tqdm import tqdm

    outputs = tuple(kind.strip() for kind in args.outputs.split(",") if kind.strip())
    if not outputs and not args.label_ids and not args.submission:
        raise FasterSegError("--outputs names no output kind: nothing would be written "
                             "(labels, label_ids, color, overlay; videos also give an overlay video)")
    if args.label_ids and "label_ids" not in outputs:
        outputs += ("label_ids",)
    if not 0 <= args.alpha <= 1:
        raise FasterSegError(f"--alpha must be between 0 and 1, got {args.alpha}")
    if args.model is None:
        from fasterseg.models import builtin_model_path

        args.model = str(builtin_model_path())
        print(f"model: the built-in CamVid model (camvid, {args.model}); --model chooses another", file=sys.stderr)
    model = load_model(args.model)
    options = RunnerOptions(backend=args.backend, device=args.device, precision=args.precision, compile=args.compile,
                            label_path=args.label_path,
                            calibration=calibration_from_args(args, model.num_classes))
    predictor = Predictor(model, options, batch_size=args.batch_size, tile=args.tile, tile_overlap=args.tile_overlap)
    with _sigterm_as_interrupt():
        report = run_predict(predictor, args.input, args.out, outputs=outputs, alpha=args.alpha, submission=args.submission,
                             warn=lambda line: tqdm.write(line, file=sys.stderr), overwrite=args.overwrite,
                             live=LiveOptions(args.max_frames, args.show, args.frame_labels))
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"segmented {len(report.written)} input(s) into {args.out}"
          + (f"; wrote {report.submission} ({len(report.written)} predictions)" if report.submission else ""))
    if report.failed:
        print(f"{len(report.failed)} input(s) failed: " + ", ".join(name for name, _ in report.failed), file=sys.stderr)
    return min(len(report.failed), MAX_FAILED_STATUS)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (what `timeout` and service managers send) stops predict as Ctrl-C does: the
    video of the input being segmented is finished with its frames so far, then the command
    ends (status 130). Only in the main thread, where Python runs signal handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
