"""Speed of every deploy path for one model, side by side in one process, as a markdown table.

Default: the official FasterSeg student (imported from ../shared/reference) at 1024x2048 on
the CPU: eager fp32 (the reference), the optimised PyTorch path with and without
torch.compile, ONNX Runtime and OpenVINO; bf16 rows (optimised PyTorch, OpenVINO) are added
with --bf16 (lossy, so not a same-labels path). With --device cuda: eager, optimised fp32/fp16/bf16 (CUDA graphs),
torch.compile and TensorRT where installed. Ratios are against eager fp32 in the same run.

    python benchmarks/speed.py [--model M.safetensors] [--size 1024x2048] [--device cpu] [--repeats 10]
"""

from __future__ import annotations

import argparse
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


def paths(device: str, bf16: bool, trt: bool):
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
    parser.add_argument("--tensorrt", action="store_true", help="also time TensorRT (CUDA, needs onnxruntime-gpu + TensorRT)")
    args = parser.parse_args()

    import torch

    from fasterseg.commands.common import parse_size
    from fasterseg.infer.bench import bench_backends, environment, format_table
    from fasterseg.modelfile import load_network

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.model) if args.model else official_student(Path(args.shared), Path(tmp))
        model = load_network(source)
        before = environment()
        options = paths(args.device, args.bf16, args.tensorrt)
        for o in options:
            o.threads = args.threads
        rows = bench_backends(model, options, parse_size(args.size), batch=args.batch, warmup=args.warmup,
                              repeats=args.repeats, progress=lambda line: print(line, file=sys.stderr, flush=True))
        after = environment()
    print(f"command: python {shlex.join(['benchmarks/speed.py', *sys.argv[1:]])}")
    print(f"model: {args.model or 'official FasterSeg student (arch_1.pt + student_seed0_weights1.pt)'}, "
          f"input {args.size}, batch {args.batch}")
    device = after.get("gpu", after["cpu"]) if args.device != "cpu" else after["cpu"]
    print(f"device: {device} ({after['cores']} cores, {after['torch_threads']} torch threads); torch {after['torch']}, "
          f"onnxruntime {after.get('onnxruntime')}; {before['date']}")
    print(f"load average (1/5/15 min) before: {before.get('load_avg')}, after: {after.get('load_avg')}")
    print()
    print(format_table(rows))


if __name__ == "__main__":
    main()
