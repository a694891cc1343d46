"""Speed of every deploy path for one model, side by side in one process, as a markdown table.

Default: the official FasterSeg student (imported from ../shared/reference) at 1024x2048 on
the CPU: eager fp32 (the reference), the optimised PyTorch path with and without
torch.compile, ONNX Runtime and OpenVINO; bf16 rows (optimised PyTorch, OpenVINO) are added
with --bf16 and int8 rows (ONNX Runtime, OpenVINO; QDQ graphs calibrated on --calib images, by
default on synthetic scenes of the model's size) with --int8 (lossy, so not same-labels paths).
With --device cuda: eager, optimised fp32/fp16/bf16 (CUDA graphs), torch.compile and TensorRT
where installed. Ratios are against eager fp32 in the same run. With --peak (the JSON of
benchmarks/cpu_peak.py) a second table gives each path's achieved GMAC/s and its share of this
CPU's measured peak at the path's precision.

    python benchmarks/speed.py [--model M.safetensors] [--size 1024x2048] [--device cpu] [--repeats 10]
    python benchmarks/speed.py --bf16 --int8 --peak runs/cpu_peak.json --threads 2
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def official_student(shared: Path, out_dir: Path) -> Path:
    from fasterseg.cli import main

    out = out_dir / "official_student.safetensors"
    rc = main(["import-official", "--arch", str(shared / "reference/official/arch_1.pt"), "--weights",
               str(shared / "reference/equivalence/student_seed0_weights1.pt"), "--student", "--out", str(out)])
    if rc:
        sys.exit(f"could not import the official student from {shared}")
    return out


def synthetic_calibration(size: tuple[int, int], num_classes: int, out_dir: Path, count: int):
    """Calibration images for a model without its own data at hand (the official student's 19
    Cityscapes classes): procedural street scenes of the model's input size."""
    from fasterseg.cli import main
    from fasterseg.infer.quantize import calibration_set

    folder = out_dir / "calibration_scenes"
    if main(["data", "synth", "--out", str(folder), "--train", str(count), "--val", "1", "--size", f"{size[0]}x{size[1]}"]):
        sys.exit("could not write synthetic calibration scenes")
    return calibration_set(f"synth:{folder}", "train", count, num_classes, size)


def paths(device: str, bf16: bool, trt: bool, calibration=None):
    from fasterseg.infer.runners import RunnerOptions

    if device == "cpu":
        chosen = [
            RunnerOptions("eager"),
            RunnerOptions("optimized", compile=False),
            RunnerOptions("optimized", compile=True),
            RunnerOptions("onnxruntime"),
            RunnerOptions("openvino"),
        ]
        if bf16:
            chosen += [RunnerOptions("optimized", precision="bf16", compile=False),
                       RunnerOptions("optimized", precision="bf16", compile=True),
                       RunnerOptions("openvino", precision="bf16")]
        if calibration is not None:
            chosen += [RunnerOptions("onnxruntime", precision="int8", calibration=calibration),
                       RunnerOptions("openvino", precision="int8", calibration=calibration)]
    else:
        chosen = [RunnerOptions("eager", device=device)]
        for precision in ("fp32", "fp16", "bf16"):
            chosen.append(RunnerOptions("optimized", device=device, precision=precision, compile=False, cuda_graphs=True))
        chosen.append(RunnerOptions("optimized", device=device, precision="fp16", compile=True, compile_mode="max-autotune"))
        chosen.append(RunnerOptions("onnxruntime", device=device))
        if trt:
            chosen += [RunnerOptions("tensorrt", device=device, precision=p) for p in ("fp32", "fp16")]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model file or genotype .json (default: the official student from ../shared)")
    parser.add_argument("--shared", default=str(REPO.parent / "shared"), help="reference material folder")
    parser.add_argument("--size", default="1024x2048")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 on the CPU (lossy)")
    parser.add_argument("--int8", action="store_true", help="also time int8 on the CPU (ONNX Runtime, OpenVINO; lossy)")
    parser.add_argument("--calib", default=None, metavar="DATA",
                        help="int8 calibration dataset spec (default: synthetic scenes of the model's size and classes)")
    parser.add_argument("--calib-split", default="train")
    parser.add_argument("--calib-images", type=int, default=16)
    parser.add_argument("--peak", default=None, metavar="JSON", help="benchmarks/cpu_peak.py --json output: add the %% of peak table")
    parser.add_argument("--tensorrt", action="store_true", help="also time TensorRT (CUDA, needs onnxruntime-gpu + TensorRT)")
    parser.add_argument("--label-path", default="exact", choices=["auto", "exact", "half", "quarter"],
                        help="how the end-to-end rows make labels (default exact: the full-size resize of every class "
                             "map, then argmax; `fasterseg bench` and the deploy paths default to auto)")
    args = parser.parse_args()

    import torch

    from fasterseg.commands.common import parse_size
    from fasterseg.infer.bench import bench_backends, format_table
    from fasterseg.utils.env import environment
    from fasterseg.modelfile import load_network

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.model) if args.model else official_student(Path(args.shared), Path(tmp))
        model = load_network(source)
        size = parse_size(args.size)
        calibration = None
        if args.int8:
            from fasterseg.infer.quantize import calibration_set

            classes = model.genotype.num_classes
            calibration = (calibration_set(args.calib, args.calib_split, args.calib_images, classes) if args.calib
                           else synthetic_calibration(size, classes, Path(tmp), args.calib_images))
        before = environment()
        options = paths(args.device, args.bf16, args.tensorrt, calibration)
        for o in options:
            o.threads = args.threads
            o.label_path = args.label_path
        rows = bench_backends(model, options, size, batch=args.batch, warmup=args.warmup,
                              repeats=args.repeats, progress=lambda line: print(line, file=sys.stderr, flush=True))
        after = environment()
    print(f"command: python {shlex.join(['benchmarks/speed.py', *sys.argv[1:]])}")
    print(f"model: {args.model or 'official FasterSeg student (arch_1.pt + student_seed0_weights1.pt)'}, "
          f"input {args.size}, batch {args.batch}")
    device = after.get("gpu", after["cpu"]) if args.device != "cpu" else after["cpu"]
    print(f"device: {device} ({after['cores']} cores, {after['torch_threads']} torch threads); torch {after['torch']}, "
          f"onnxruntime {after.get('onnxruntime')}; {before['date']}")
    print(f"load average (1/5/15 min) before: {before.get('load_avg')}, after: {after.get('load_avg')}")
    if calibration is not None:
        print(f"int8 calibration: {calibration.describe()}")
    print()
    print(format_table(rows))
    if args.peak:
        from fasterseg.nets.summary import count_macs

        print()
        print(peak_table(rows, count_macs(model.genotype, size) * args.batch / 1e9, json.loads(Path(args.peak).read_text())))


def peak_table(rows, gmac: float, peak: dict) -> str:
    """Achieved GMAC/s of each path (the network's multiply-accumulates over its median time)
    and that as a share of the CPU's peak at the path's precision (benchmarks/cpu_peak.py)."""
    peaks = peak["peaks"]
    lines = [f"Network: {gmac:.2f} GMAC per batch. Peak (cpu_peak.py, {peak['threads']} threads): "
             + ", ".join(f"{p} {v['gmac_per_s']:.0f}" for p, v in peaks.items()) + " GMAC/s.", "",
             "| path | precision | model-only GMAC/s | % of peak | end-to-end GMAC/s | % of peak |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r.error or r.end_to_end is None:
            continue
        top = peaks.get(r.precision, {}).get("gmac_per_s")
        cells = []
        for timing in (r.model_only, r.end_to_end):
            rate = gmac / (timing.median_ms / 1000) if timing else None
            cells += [f"{rate:.0f}" if rate else "-", f"{100 * rate / top:.0f}%" if rate and top else "-"]
        lines.append(f"| {r.path} | {r.precision} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
