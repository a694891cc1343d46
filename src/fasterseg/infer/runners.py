"""Deploy paths: one ``Runner`` interface over eager PyTorch, an optimised PyTorch graph,
ONNX Runtime, OpenVINO and TensorRT, so the predictor and the benchmark treat them alike
(:mod:`fasterseg.backends` lists them).

Every runner maps a normalised float batch (N, 3, H, W) to int64 labels (N, H, W) at input size
(``labels``) and to the 1/8 class scores (``logits8``, the "model-only" part). The optimised
path folds BatchNorm into the convolutions, uses channels_last, runs under inference mode, and
optionally ``torch.compile``, fp16/bf16 and (on CUDA) CUDA graphs; all of these must give the
plain model's labels, which the tests check.
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from fasterseg.backends import LABEL_PATHS, PRECISION_NAMES, REGISTRY, entry, label_path_for, resolve
from fasterseg.errors import BackendUnavailable, FasterSegError
from fasterseg.infer.fold import fold_batchnorm, fold_for_deploy
from fasterseg.infer.heads import NetworkOnly, Segmenter
from fasterseg.infer.quantize import Calibration
from fasterseg.utils import device as device_caps

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # the PyTorch paths' dtypes


@dataclass
class RunnerOptions:
    """How to run: ``compile``/``cuda_graphs``/``channels_last`` apply to the optimised path only."""

    backend: str = "eager"
    device: str = "cpu"
    precision: str = "fp32"
    compile: bool = True
    compile_mode: str | None = None
    channels_last: bool = True
    cuda_graphs: bool = True
    threads: int | None = None
    onnx_dir: Path | None = None  # where ONNX Runtime/TensorRT keep their exported graphs
    calibration: Calibration | None = None  # int8: the images its activation ranges are measured on
    label_path: str = "exact"  # how labels are made: auto | exact | half | quarter (fasterseg.infer.heads)
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        parts = [self.backend, self.precision]
        if self.label_path != "exact":
            parts.append(f"labels-{self.label_path}")
        if self.backend == "optimized":
            parts.append("folded-bn")
            if self.channels_last:
                parts.append("channels_last")
            if self.compile:
                parts.append("compiled")
            if self.device.startswith("cuda") and self.cuda_graphs and not self.compile:
                parts.append("cuda-graphs")
        return "+".join(parts)


class Runner:
    """A deploy path. ``labels(x)`` and ``logits8(x)`` take a normalised batch on ``device``."""

    def __init__(self, name: str, device: torch.device, labels: Callable, logits8: Callable):
        self.name = name
        self.device = device
        self._labels = labels
        self._logits8 = logits8

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        return self._labels(x)

    def logits8(self, x: torch.Tensor) -> torch.Tensor:
        return self._logits8(x)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def build_runner(model: nn.Module, options: RunnerOptions) -> Runner:
    """The runner for ``options.backend``; raises :class:`BackendUnavailable` if it cannot run here."""
    backend = entry(options.backend)
    if options.precision not in PRECISION_NAMES:
        raise FasterSegError(f"precision must be one of {PRECISION_NAMES}, got {options.precision!r}")
    if options.precision not in backend.precisions:
        others = [e.name for e in REGISTRY.values() if options.precision in e.precisions]
        raise BackendUnavailable(f"{backend.name}: runs {', '.join(backend.precisions)}, not {options.precision} "
                                 f"({options.precision} runs on {', '.join(others)})")
    if options.label_path not in LABEL_PATHS:
        raise FasterSegError(f"label path must be one of {LABEL_PATHS}, got {options.label_path!r}")
    if options.precision == "int8" and options.calibration is None:
        raise BackendUnavailable(f"{backend.name} int8: needs calibration images (--calib DATA)")
    build = resolve(backend.runner)
    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"device {options.device}: CUDA is not available on this machine")
    if options.threads:
        torch.set_num_threads(options.threads)
    return build(model.eval(), options, device)


def eager_runner(model: nn.Module, options: RunnerOptions, device: torch.device) -> Runner:
    """The plain model as loaded: the reference every other path must reproduce."""
    if options.precision != "fp32":
        raise BackendUnavailable("the eager backend is the fp32 reference; use --backend optimized for fp16/bf16")
    model = model.to(device)
    segmenter = Segmenter(model, label_path=options.label_path).eval()

    def labels(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x).argmax(1) if options.label_path == "exact" else segmenter(x)

    def logits8(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.logits8(x)

    return Runner(options.describe(), device, labels, logits8)


def optimized_runner(model: nn.Module, options: RunnerOptions, device: torch.device) -> Runner:
    dtype = PRECISIONS[options.precision]
    if dtype == torch.float16 and device.type == "cpu":
        raise BackendUnavailable("fp16 is for GPUs; on CPU use fp32 or bf16")
    if dtype == torch.bfloat16 and device.type == "cpu" and not device_caps.bf16_supported(device):
        # Emulated bf16 runs several times slower than fp32 and would be timed as if it were the real thing.
        raise BackendUnavailable("optimized bf16: this CPU has no native bf16 (AVX512-BF16 or AMX); "
                                 "use fp32, or int8 on onnxruntime/openvino")
    net = fold_for_deploy(model).to(device=device, dtype=dtype)
    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    seg, low = Segmenter(net, label_path=options.label_path).eval(), NetworkOnly(net).eval()
    if options.compile:
        seg = torch.compile(seg, mode=options.compile_mode, dynamic=False)
        low = torch.compile(low, mode=options.compile_mode, dynamic=False)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return x.to(device=device, dtype=dtype).contiguous(memory_format=memory_format)

    def run(module: Callable) -> Callable:
        def call(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return module(prepare(x))
        return call

    labels, logits8 = run(seg), run(low)
    if device.type == "cuda" and options.cuda_graphs and not options.compile:
        labels, logits8 = _CudaGraphed(labels, device), _CudaGraphed(logits8, device)
    return Runner(options.describe(), device, labels, logits8)


class _CudaGraphed:
    """Replays a captured CUDA graph per input shape: one launch instead of hundreds of kernels.

    Inputs are copied into the graph's static input; the output is cloned so a later replay
    cannot overwrite what the caller holds.
    """

    def __init__(self, fn: Callable, device: torch.device, warmup: int = 3):
        self.fn, self.device, self.warmup = fn, device, warmup
        self.graphs: dict[tuple, tuple] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype)
        if key not in self.graphs:
            static_in = x.to(self.device).clone()
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                for _ in range(self.warmup):
                    self.fn(static_in)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.fn(static_in)
            self.graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()


def _export_dir(options: RunnerOptions) -> Path:
    """One runner's folder for its graphs: the caller's ``onnx_dir`` (graphs found there are
    reused, so it must hold graphs of this model only), else a fresh one. It is kept by the runner,
    not written back into ``options``, so options reused for another model cannot carry it over."""
    return Path(options.onnx_dir) if options.onnx_dir else Path(tempfile.mkdtemp(prefix="fasterseg-onnx-"))


def _graph_for(output: str, options: RunnerOptions, x: torch.Tensor) -> tuple[str, str]:
    """Which graph an input runs: (output, concrete label path). A graph fixes its label path, so
    ``auto`` keeps one graph per path it picks (at most two: half and quarter)."""
    return output, label_path_for(options.label_path, x.shape[2]) if output == "labels" else "exact"


def _export(model: nn.Module, options: RunnerOptions, graph: tuple[str, str], directory: Path) -> Path:
    """The ONNX graph ``graph`` ("labels" with fused argmax on its label path, or "logits8") in
    ``directory``, dynamic N, H, W; for int8, its QDQ version calibrated on ``options.calibration``."""
    from fasterseg.infer.export import export_onnx

    output, label_path = graph
    path = directory / (f"{output}.onnx" if label_path == "exact" else f"{output}-{label_path}.onnx")
    if not path.exists():
        example_size = options.extra.get("example_size", (256, 512))
        export_onnx(fold_batchnorm(model, strict=False).cpu(), path, size=example_size, dynamic=True, output=output,
                    check=False, label_path=label_path)
    if options.precision != "int8":
        return path
    from fasterseg.infer.quantize import quantize_onnx

    quantized = path.with_suffix(".int8.onnx")
    if not quantized.exists():
        quantize_onnx(path, quantized, options.calibration)
    return quantized


def _ort_runner(model: nn.Module, options: RunnerOptions, device: torch.device, providers: list) -> Runner:
    """Each graph is exported and loaded on first use (export takes seconds; many callers need one)."""
    from fasterseg.infer.export import ort_session

    sessions: dict = {}
    directory = _export_dir(options)

    def run(output: str) -> Callable:
        def call(x: torch.Tensor) -> torch.Tensor:
            graph = _graph_for(output, options, x)
            if graph not in sessions:
                sessions[graph] = ort_session(_export(model, options, graph, directory), threads=options.threads, providers=providers)
            array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
            return torch.from_numpy(sessions[graph].run(None, {"image": array})[0]).to(device)
        return call

    return Runner(options.describe(), device, run("labels"), run("logits8"))


def onnxruntime_runner(model: nn.Module, options: RunnerOptions, device: torch.device) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable("onnxruntime is not installed (pip install 'fasterseg[deploy]')") from None
    provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        raise BackendUnavailable(f"onnxruntime has no {provider} here (available: {ort.get_available_providers()})")
    return _ort_runner(model, options, device, [provider])


def tensorrt_runner(model: nn.Module, options: RunnerOptions, device: torch.device) -> Runner:
    """TensorRT through ONNX Runtime's TensorRT execution provider (needs onnxruntime-gpu + TensorRT)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable("tensorrt: onnxruntime is not installed") from None
    if device.type != "cuda":
        raise BackendUnavailable("tensorrt runs on CUDA devices only (use --device cuda)")
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        raise BackendUnavailable("tensorrt: onnxruntime has no TensorrtExecutionProvider here (install onnxruntime-gpu and TensorRT)")
    trt = ("TensorrtExecutionProvider", {"trt_fp16_enable": options.precision == "fp16"})
    return _ort_runner(model, options, device, [trt, "CUDAExecutionProvider"])


def openvino_runner(model: nn.Module, options: RunnerOptions, device: torch.device) -> Runner:
    """OpenVINO on the CPU, from the exported ONNX graph compiled once per input shape (static
    shapes run fastest). ``fp32`` pins OpenVINO's inference precision to f32 (on CPUs with bf16
    units its default would be bf16); ``bf16`` asks for bf16 (AVX512-BF16 / AMX); ``int8`` runs
    the calibrated QDQ graph: int8 convolutions, the rest in bf16 where the CPU has bf16 units
    (else f32)."""
    try:
        import openvino as ov
    except ImportError:
        raise BackendUnavailable("openvino is not installed (pip install 'fasterseg[deploy]')") from None
    if device.type != "cpu":
        raise BackendUnavailable(f"openvino runs on the CPU here (use --device cpu), got {device}")
    core = ov.Core()
    has_bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if options.precision == "bf16" and not has_bf16:
        raise BackendUnavailable("openvino bf16: this CPU has no bf16 support")
    float_precision = {"fp32": "f32", "bf16": "bf16", "int8": "bf16" if has_bf16 else "f32"}[options.precision]
    config = {"INFERENCE_PRECISION_HINT": float_precision, "PERFORMANCE_HINT": "LATENCY"}
    if options.threads:
        config["INFERENCE_NUM_THREADS"] = options.threads
    # One compiled model per input shape, the least recently used dropped beyond the limit: a
    # server or a folder of photos of ever new sizes must not grow memory without bound.
    compiled: OrderedDict = OrderedDict()
    limit = int(options.extra.get("max_compiled_shapes", 8))
    directory = _export_dir(options)

    def run(output: str) -> Callable:
        def call(x: torch.Tensor) -> torch.Tensor:
            graph = _graph_for(output, options, x)
            key = (graph, tuple(x.shape))
            if key not in compiled:
                network = core.read_model(str(_export(model, options, graph, directory)))
                network.reshape({"image": list(x.shape)})
                compiled[key] = core.compile_model(network, "CPU", config)
                while len(compiled) > limit:
                    compiled.popitem(last=False)
            compiled.move_to_end(key)
            array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
            result = compiled[key]([array])[0]
            return torch.from_numpy(np.array(result)).to(device)
        return call

    runner = Runner(options.describe(), device, run("labels"), run("logits8"))
    runner.compiled = compiled  # what is kept, for tests and curious callers
    return runner
