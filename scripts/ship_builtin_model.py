"""Package a training run's model as fasterseg's built-in model (fp16, no aux heads).

    python scripts/ship_builtin_model.py RUN_DIR [--heldout RUN/seq_val.json --heldout-note TEXT]
                                         [--weights auto|ema|last|best] [--dtype fp16|int8]
                                         [--latency 360x480 [--paths ...]]
                                         [--out src/fasterseg/models/camvid_student.safetensors]

The model file records how it was made: the exact training command, its data and splits, the
run's validation mIoU (on ``val_split``) and the date, so `fasterseg info` on it says where it came
from. When the validation frames were among the training frames (a final model trained on
train + val), the validation score says nothing about unseen scenes: the run's last model is
shipped rather than the "best" one, the header says the validation frames were seen, and
``--heldout`` records the score of the same recipe on frames it never saw (an ``eval --json``
file of a run that held them out). A run that kept the weights' moving average (``ema_decay``) ships
the average (``ema.safetensors``): late in a schedule it scores steadily above the raw weights.
``--dtype int8`` stores the convolution weights in int8 (per output channel), half the size of
fp16, for networks whose fp16 file would exceed the 10 MB a shipped file may take.
``--latency HxW`` times the shipped file on each CPU deploy path of ``--paths`` on this machine and
records the fastest (its model-only and end-to-end medians, the path, the CPU and the threads).
"""

from __future__ import annotations

import argparse
import json
import shlex
from datetime import date
from pathlib import Path

from fasterseg.data.registry import build_dataset
from fasterseg.modelfile import convert_model_file, load_model


def _frames(spec: str, splits) -> set[str]:
    splits = [splits] if isinstance(splits, str) else list(splits)
    return {str(Path(image).resolve()) for split in splits for image, _ in build_dataset(spec, split).pairs}


def _fastest_path(model_file: Path, size: tuple[int, int], paths: list[str], threads: int) -> str:
    """Time the model on each ``backend:precision`` path (interleaved rounds) and describe the fastest."""
    import torch

    from fasterseg.infer.bench import bench_backends
    from fasterseg.infer.runners import RunnerOptions
    from fasterseg.utils.env import cpu_name

    torch.set_num_threads(threads)
    options = []
    for path in paths:
        backend, _, precision = path.partition(":")
        options.append(RunnerOptions(backend=backend, precision=precision or "fp32", threads=threads, label_path="auto"))
    rows = [r for r in bench_backends(load_model(model_file), options, size, warmup=5, repeats=40) if r.error is None]
    if not rows:
        raise SystemExit(f"--latency: none of the paths {paths} runs here")
    best = min(rows, key=lambda r: r.model_only.median_ms)
    return (f"{best.model_only.median_ms:.1f} ms model-only, {best.end_to_end.median_ms:.1f} ms end to end "
            f"({best.backend} {best.precision}, {size[0]}x{size[1]}, {threads} threads, {cpu_name()}, {date.today().isoformat()}; "
            f"fastest of {', '.join(f'{r.backend} {r.precision}' for r in rows)})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a `fasterseg train` run directory")
    p.add_argument("--out", type=Path, default=Path("src/fasterseg/models/camvid_student.safetensors"))
    p.add_argument("--note", default="", help="free text stored with the model (e.g. where its genotype came from)")
    p.add_argument("--heldout", type=Path, help="an `eval --json` file: the recipe's score on frames it never saw")
    p.add_argument("--weights", choices=("auto", "ema", "last", "best"), default="auto",
                   help="which weights: auto = the moving average where the run kept one, else the last weights "
                        "when the validation frames were trained on, else the best")
    p.add_argument("--dtype", choices=("fp16", "int8"), default="fp16",
                   help="how the weights are stored: fp16, or int8 convolution weights (half the size)")
    p.add_argument("--latency", metavar="HxW", help="time the shipped file at this size and record its fastest CPU path")
    p.add_argument("--paths", default="openvino:bf16,openvino:fp32,onnxruntime:fp32,eager:fp32",
                   help="backend:precision paths --latency tries (those not installed or unsupported are skipped)")
    p.add_argument("--threads", type=int, default=2, help="threads --latency times with")
    p.add_argument("--heldout-note", default="", help="what --heldout scored (which run, which frames)")
    args = p.parse_args()
    env = json.loads((args.run / "environment.json").read_text())
    metrics = json.loads((args.run / "metrics.json").read_text())
    argv = env["command"]
    command = "fasterseg " + " ".join(shlex.quote(a) for a in argv[1:])
    data = metrics["config"]["data"]
    seen = bool(_frames(data["spec"], data["train_split"]) & _frames(data["spec"], data["val_split"]))
    weights = args.weights
    if weights == "auto":
        weights = "ema" if (args.run / "ema.safetensors").is_file() else "last" if seen else "best"
    column = "val_mIoU_ema" if weights == "ema" else "val_mIoU"
    last_val = next((h[column] for h in reversed(metrics["history"]) if column in h), None)
    extra = {
        "command": command,
        "data": data["spec"],
        "val_mIoU": metrics["best_val_mIoU"] if weights == "best" else last_val,
        "weights": {"ema": f"moving average (ema_decay {metrics['config'].get('ema_decay')})", "last": "last epoch",
                    "best": "best validation epoch"}[weights],
        "val_frames_seen_in_training": seen,
        "train_split": data["train_split"],
        "val_split": data["val_split"],
        "epochs": metrics["epochs"],
        "trained": env["date"],
        "torch": env["torch"],
        "git_commit": env.get("git_commit"),
    }
    if args.note:
        extra["note"] = args.note
    if args.heldout:
        extra["heldout_mIoU"] = json.loads(args.heldout.read_text())["average"]["IoU Classes"]
        extra["heldout_note"] = args.heldout_note
    source = args.run / f"{weights}.safetensors"
    if not source.is_file():
        raise SystemExit(f"{source} does not exist (--weights {args.weights}): is {args.run} a finished run?")
    out = convert_model_file(source, args.out, include_aux=False, extra=extra, weights=args.dtype)
    if args.latency:
        height, _, width = args.latency.partition("x")
        extra["latency"] = _fastest_path(out, (int(height), int(width)), args.paths.split(","), args.threads)
        out = convert_model_file(source, args.out, include_aux=False, extra=extra, weights=args.dtype)  # the same file, timed
        print(f"latency: {extra['latency']}")
    print(f"wrote {out} from {source} ({out.stat().st_size / 1e6:.1f} MB): {extra['val_split']} mIoU "
          f"{100 * extra['val_mIoU']:.2f}" + (" (frames seen in training)" if seen else "")
          + (f"; held out: {100 * extra['heldout_mIoU']:.2f}" if args.heldout else ""))


if __name__ == "__main__":
    main()
