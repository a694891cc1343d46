"""This CPU's sustained convolution throughput in fp32, bf16 and int8 (GMAC/s), the ceiling the
deploy paths are measured against in docs/benchmarks.md.

Stacks of four large convolutions with ReLU between them (compute-bound: thousands of
multiply-accumulates per byte moved; in int8 the activations between them stay int8, as in a
network) are timed on every runtime that can run them at each precision: OpenVINO (fp32, bf16, int8 from a QDQ
graph), ONNX Runtime (fp32, int8 QDQ) and PyTorch (fp32, bf16 autocast). The peak of a precision
is the best any of them reaches; the speed table divides a path's achieved GMAC/s by it.

    python benchmarks/cpu_peak.py [--threads 2] [--repeats 20] [--json runs/cpu_peak.json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# (name, channels, kernel, height, width): 3x3 and 1x1 layers as wide as the networks' widest,
# at sizes where the work dwarfs the call overhead.
SHAPES = [
    ("4 x conv3x3 256 @ 64x128", 256, 3, 64, 128),
    ("4 x conv3x3 128 @ 128x256", 128, 3, 128, 256),
    ("4 x conv1x1 512 @ 64x128", 512, 1, 64, 128),
]
DEPTH = 4


@dataclass
class PeakRow:
    shape: str
    runtime: str
    precision: str
    gmac: float
    median_ms: float | None
    gmac_per_s: float | None
    error: str = ""


def conv_stack(channels: int, k: int):
    import torch

    torch.manual_seed(0)
    layers = []
    for _ in range(DEPTH):
        layers += [torch.nn.Conv2d(channels, channels, k, padding=k // 2, bias=True), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers).eval()


def median_ms(call, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def onnx_graphs(module, shape: tuple[int, ...], directory: Path) -> tuple[Path, Path]:
    """The fp32 ONNX graph of ``module`` and its int8 QDQ version (calibrated on random inputs:
    the speed of int8 kernels does not depend on the ranges)."""
    from fasterseg.infer.export import onnx_bytes
    from fasterseg.infer.quantize import Calibration, quantize_onnx

    fp32 = directory / "fp32.onnx"
    fp32.write_bytes(onnx_bytes(module, shape))
    rng = np.random.default_rng(0)
    batches = tuple(rng.standard_normal(shape, dtype=np.float32) for _ in range(4))
    int8 = quantize_onnx(fp32, directory / "int8.onnx", Calibration(batches, "random", shape[2:]), input_name="input",
                         op_types=None)  # the ReLUs too: activations stay int8 between the convolutions
    return fp32, int8


def time_shape(spec, threads: int, warmup: int, repeats: int) -> list[PeakRow]:
    import torch

    from fasterseg.utils.device import bf16_supported

    name, c, k, h, w = spec
    gmac = DEPTH * c * c * k * k * h * w / 1e9
    shape = (1, c, h, w)
    module = conv_stack(c, k)
    x = torch.randn(shape)
    array = x.numpy()
    rows = []

    def add(runtime: str, precision: str, make_call) -> None:
        try:
            ms = median_ms(make_call(), warmup, repeats)
            rows.append(PeakRow(name, runtime, precision, gmac, ms, gmac / (ms / 1000)))
        except Exception as exc:  # a runtime or precision this machine lacks: say so in the table
            rows.append(PeakRow(name, runtime, precision, gmac, None, None, f"{type(exc).__name__}: {exc}"[:160]))

    def torch_call(dtype):
        def make():
            if dtype == torch.bfloat16 and not bf16_supported(torch.device("cpu")):
                raise RuntimeError("this CPU has no native bf16 (emulated bf16 is slower than fp32)")
            def call():
                with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                    module(x)
            return call
        return make

    add("pytorch", "fp32", torch_call(torch.float32))
    add("pytorch", "bf16", torch_call(torch.bfloat16))
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = onnx_graphs(module, shape, Path(tmp))
        from fasterseg.infer.export import ort_session

        for precision, path in (("fp32", fp32), ("int8", int8)):
            def make_ort(path=path):
                session = ort_session(path, threads=threads)
                return lambda: session.run(None, {"input": array})
            add("onnxruntime", precision, make_ort)
        import openvino as ov

        core = ov.Core()
        for precision, path, hint in (("fp32", fp32, "f32"), ("bf16", fp32, "bf16"), ("int8", int8, "f32")):
            def make_ov(path=path, hint=hint):
                if hint == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
                    raise RuntimeError("this CPU has no bf16 support")
                compiled = core.compile_model(core.read_model(str(path)), "CPU", {
                    "INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
                return lambda: compiled([array])
            add("openvino", precision, make_ov)
    return rows


def peaks(rows: list[PeakRow]) -> dict[str, dict]:
    """Per precision: the best GMAC/s any runtime reached on any shape, and where."""
    best: dict[str, dict] = {}
    for r in rows:
        if r.gmac_per_s is not None and r.gmac_per_s > best.get(r.precision, {}).get("gmac_per_s", 0):
            best[r.precision] = {"gmac_per_s": r.gmac_per_s, "runtime": r.runtime, "shape": r.shape}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", default=None, metavar="FILE", help="also write rows and peaks as JSON (speed.py --peak reads it)")
    args = parser.parse_args()

    import torch

    from fasterseg.utils.env import environment
    from fasterseg.utils.io import atomic_write_text

    torch.set_num_threads(args.threads)
    rows = []
    for spec in SHAPES:
        print(f"timing {spec[0]}", file=sys.stderr, flush=True)
        rows += time_shape(spec, args.threads, args.warmup, args.repeats)
    env = environment()
    best = peaks(rows)
    print(f"command: python {shlex.join(['benchmarks/cpu_peak.py', *sys.argv[1:]])}")
    print(f"device: {env['cpu']} ({env['cores']} cores, {args.threads} threads); torch {env['torch']}, "
          f"onnxruntime {env.get('onnxruntime')}, openvino {env.get('openvino', '-')}; {env['date']}")
    print()
    print("| shape | runtime | precision | GMAC | median ms | GMAC/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r.error:
            print(f"| {r.shape} | {r.runtime} | {r.precision} | {r.gmac:.2f} | - | {r.error} |")
        else:
            print(f"| {r.shape} | {r.runtime} | {r.precision} | {r.gmac:.2f} | {r.median_ms:.2f} | {r.gmac_per_s:.0f} |")
    print()
    print("| precision | peak GMAC/s | reached by |")
    print("|---|---|---|")
    for precision, b in best.items():
        print(f"| {precision} | {b['gmac_per_s']:.0f} | {b['runtime']}, {b['shape']} |")
    if args.json:
        atomic_write_text(Path(args.json), json.dumps({"environment": env, "threads": args.threads, "peaks": best,
                                                       "rows": [asdict(r) for r in rows]}, indent=1))


if __name__ == "__main__":
    main()
