"""Timing op instances and whole networks on one backend, carefully (an :class:`OpTimer` per
backend: what a latency table is measured with, not the deploy path that runs a model).

Backends: PyTorch eager on CPU; PyTorch on CUDA (fp32, fp16 or bf16; contiguous or
channels_last) timed with CUDA events after synchronising; ONNX Runtime on CPU; TensorRT when its
Python package is importable (`fasterseg lut build` says which cannot run here). Every measurement warms up
first, fixes the thread count, and reports the median of repeated runs, so one noisy run on a
shared machine does not move a table entry.
"""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from fasterseg.backends import TABLE_PRECISIONS, entry, resolve, timing_backend_names
from fasterseg.errors import BackendUnavailable
from fasterseg.infer.export import onnx_bytes
from fasterseg.latency.lut import LatencyTable, OpSpec, TableMeta, now_iso
from fasterseg.utils import device as device_caps
from fasterseg.utils.env import cpu_name
from fasterseg.utils.timing import Timer, cpu_timer, cuda_event_timer, repeat_ms, wall_timer
from fasterseg.nets.network import ConvBnRelu, FeatureFusion, Head, init_weights
from fasterseg.layers.ops import ConvNorm, build_op
from fasterseg.layers.upsample import interpolate_aligned

MEMORY_FORMATS = ("contiguous", "channels_last")
CLOCKS = ("wall", "cpu")


# -- the module each op spec stands for ----------------------------------------------------
class _Arm(nn.Module):
    """1x1 conv-BN-ReLU, then the x2 bilinear resize the network applies right after it."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = ConvNorm(c_in, c_out, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return interpolate_aligned(out, (x.shape[2] * 2, x.shape[3] * 2))


class _HeadWithResize(nn.Module):
    """The 1/8 head and the x8 bilinear resize of its logits (what eval-mode forward ends with)."""

    def __init__(self, c_in: int, num_classes: int):
        super().__init__()
        self.head = Head(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x)
        return interpolate_aligned(out, (x.shape[2] * 8, x.shape[3] * 8))


def build_module(spec: OpSpec) -> nn.Module:
    """A freshly initialised module computing ``spec`` (eval mode)."""
    if spec.op == "stem_conv":
        module: nn.Module = ConvNorm(spec.c_in, spec.c_out, 3, spec.stride, 1)
    elif spec.op == "arm":
        module = _Arm(spec.c_in, spec.c_out)
    elif spec.op == "refine":
        module = ConvNorm(spec.c_in, spec.c_out, 3, 1, 1)
    elif spec.op == "ffm":
        module = FeatureFusion(spec.c_in)
    elif spec.op == "head":
        module = _HeadWithResize(spec.c_in, spec.c_out)
    elif spec.op == "skip" and spec.stride == 1 and spec.c_in != spec.c_out:
        # The supernet's stride-1 skip between different widths is a 1x1 projection.
        module = ConvBnRelu(spec.c_in, spec.c_out, 1)
    else:
        module = build_op(spec.op, spec.c_in, spec.c_out, spec.stride)
    init_weights(module)
    return module.eval()


def input_shape(spec: OpSpec, batch: int = 1) -> tuple[int, int, int, int]:
    return (batch, spec.c_in, spec.h, spec.w)


# -- timing harness ------------------------------------------------------------------------
@dataclass
class TimingSettings:
    warmup: int = 3
    repeats: int = 15
    min_time_s: float = 0.0  # keep repeating until at least this much time was measured
    # "wall": elapsed time (a dedicated machine). "cpu": CPU time this process used, which on a
    # shared machine is what a run costs when it has its cores alone (CPU backends only).
    clock: str = "wall"


def _median_ms(run: Callable[[], None], settings: TimingSettings, timer: Timer) -> float:
    return statistics.median(repeat_ms(run, timer, settings.warmup, settings.repeats, settings.min_time_s))


def _host_timer(settings: TimingSettings) -> Callable[[Callable[[], None]], float]:
    if settings.clock not in CLOCKS:
        raise BackendUnavailable(f"clock must be one of {CLOCKS}, got {settings.clock!r}")
    return cpu_timer if settings.clock == "cpu" else wall_timer()


class OpTimer:
    """Times a module on one device/backend/precision. Subclasses fill in ``_time``."""

    name = "base"

    def __init__(self, device: str = "cpu", precision: str = "fp32", memory_format: str = "contiguous",
                 threads: int | None = 1, settings: TimingSettings | None = None, batch: int = 1):
        if precision not in TABLE_PRECISIONS:
            raise BackendUnavailable(f"precision must be one of {TABLE_PRECISIONS}, got {precision!r}"
                                     + ("; an operator's int8 speed depends on its calibrated graph, so tables are built "
                                        "in fp32/fp16/bf16" if precision == "int8" else ""))
        if memory_format not in MEMORY_FORMATS:
            raise BackendUnavailable(f"memory format must be one of {MEMORY_FORMATS}, got {memory_format!r}")
        self.device = device
        self.precision = precision
        self.memory_format = memory_format
        self.threads = threads
        self.settings = settings or TimingSettings()
        self.batch = batch
        if self.settings.clock == "cpu" and device != "cpu":
            raise BackendUnavailable("--clock cpu applies to CPU backends; GPU timings use CUDA events")
        if threads is not None:
            torch.set_num_threads(threads)

    def time_module(self, module: nn.Module, shape: tuple[int, ...]) -> float:
        """Median milliseconds of one forward of ``module`` on an input of ``shape``."""
        raise NotImplementedError

    def time_spec(self, spec: OpSpec) -> float:
        return self.time_module(build_module(spec), input_shape(spec, self.batch))

    def device_name(self) -> str:
        return f"cpu: {cpu_name()}"

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "python": platform.python_version()}

    def meta(self, size: tuple[int, int], source: str = "") -> TableMeta:
        return TableMeta(device=self.device_name(), backend=self.name, precision=self.precision,
                         memory_format=self.memory_format, size=tuple(size), batch=self.batch,
                         threads=self.threads, clock=self.settings.clock if self.device == "cpu" else "cuda-events",
                         versions=self.versions(), date=now_iso(), source=source)


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchTimer(OpTimer):
    """PyTorch eager. CPU: wall clock around each call. CUDA: CUDA events, synchronised."""

    name = "eager"

    def __init__(self, device: str = "cpu", **kwargs):
        super().__init__(device=device, **kwargs)
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise BackendUnavailable("--device cuda: PyTorch sees no CUDA device on this machine")
        elif device != "cpu":
            raise BackendUnavailable(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
        elif self.precision == "fp16":
            raise BackendUnavailable("fp16 on CPU is not a deployment setting; use fp32 or bf16 on CPU")
        elif self.precision == "bf16" and not device_caps.bf16_supported(torch.device("cpu")):
            # Emulated bf16 is several times slower than fp32: a table of it would mislead the search.
            raise BackendUnavailable("--precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX); use fp32")

    def device_name(self) -> str:
        if self.device.startswith("cuda"):
            return f"cuda: {torch.cuda.get_device_name(torch.device(self.device))}"
        return f"cpu: {cpu_name()}"

    def versions(self) -> dict[str, str]:
        v = super().versions()
        if self.device.startswith("cuda"):
            v["cuda"] = str(torch.version.cuda)
            v["cudnn"] = str(torch.backends.cudnn.version())
        return v

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]):
        dtype = _DTYPES[self.precision]
        fmt = torch.channels_last if self.memory_format == "channels_last" else torch.contiguous_format
        module = module.to(self.device, dtype=dtype, memory_format=fmt).eval()
        x = torch.randn(shape, device=self.device, dtype=dtype).contiguous(memory_format=fmt)
        return module, x

    def time_module(self, module: nn.Module, shape: tuple[int, ...]) -> float:
        module, x = self._prepare(module, shape)
        with torch.inference_mode():
            def run() -> None:
                module(x)

            if self.device.startswith("cuda"):
                torch.backends.cudnn.benchmark = True
                return _median_ms(run, self.settings, cuda_event_timer)
            return _median_ms(run, self.settings, _host_timer(self.settings))


class OnnxRuntimeTimer(OpTimer):
    """ONNX Runtime, CPU execution provider, all graph optimisations, fixed intra-op threads."""

    name = "onnxruntime"

    def __init__(self, device: str = "cpu", **kwargs):
        super().__init__(device=device, **kwargs)
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise BackendUnavailable("--backend onnxruntime: the onnxruntime package is not installed "
                                     "(pip install 'fasterseg[onnx]')") from None
        if device != "cpu":
            raise BackendUnavailable(f"--backend onnxruntime measures on the CPU only, got --device {device}")
        if self.precision != "fp32":
            raise BackendUnavailable(f"--backend onnxruntime measures fp32 only, got --precision {self.precision}")

    def versions(self) -> dict[str, str]:
        import onnxruntime

        return {**super().versions(), "onnxruntime": onnxruntime.__version__}

    def time_module(self, module: nn.Module, shape: tuple[int, ...]) -> float:
        import numpy as np
        import onnxruntime as ort

        model = onnx_bytes(module, shape)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads is not None:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

        def run() -> None:
            session.run(None, {"input": x})

        return _median_ms(run, self.settings, _host_timer(self.settings))


class OpenVinoTimer(OpTimer):
    """OpenVINO on the CPU, each module compiled for its fixed input shape: fp32 (the inference
    precision pinned to f32) or bf16 (the CPU's bf16 units), with fixed threads."""

    name = "openvino"

    def __init__(self, device: str = "cpu", **kwargs):
        super().__init__(device=device, **kwargs)
        try:
            import openvino as ov
        except ImportError:
            raise BackendUnavailable("--backend openvino: the openvino package is not installed "
                                     "(pip install 'fasterseg[deploy]')") from None
        if device != "cpu":
            raise BackendUnavailable(f"--backend openvino measures on the CPU only, got --device {device}")
        if self.precision == "fp16":
            raise BackendUnavailable("--backend openvino: use fp32 or bf16 on the CPU")
        self.core = ov.Core()
        if self.precision == "bf16" and "BF16" not in self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise BackendUnavailable("--backend openvino --precision bf16: this CPU has no bf16 support")

    def versions(self) -> dict[str, str]:
        import openvino

        return {**super().versions(), "openvino": openvino.__version__}

    def time_module(self, module: nn.Module, shape: tuple[int, ...]) -> float:
        import tempfile

        import numpy as np

        config = {"INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32", "PERFORMANCE_HINT": "LATENCY"}
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = self.threads
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "module.onnx"
            path.write_bytes(onnx_bytes(module, shape))
            compiled = self.core.compile_model(self.core.read_model(str(path)), "CPU", config)
        request = compiled.create_infer_request()
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

        def run() -> None:
            request.infer([x])

        return _median_ms(run, self.settings, _host_timer(self.settings))


class TensorRTTimer(OpTimer):
    """TensorRT engine built from the ONNX graph, timed with CUDA events (needs a GPU)."""

    name = "tensorrt"

    def __init__(self, device: str = "cuda", **kwargs):
        super().__init__(device=device, **kwargs)
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            raise BackendUnavailable("--backend tensorrt: the tensorrt Python package is not importable here") from None
        if not torch.cuda.is_available():
            raise BackendUnavailable("--backend tensorrt: PyTorch sees no CUDA device on this machine")

    def device_name(self) -> str:
        return f"cuda: {torch.cuda.get_device_name(0)}"

    def versions(self) -> dict[str, str]:
        import tensorrt

        return {**super().versions(), "tensorrt": tensorrt.__version__, "cuda": str(torch.version.cuda)}

    def time_module(self, module: nn.Module, shape: tuple[int, ...]) -> float:  # pragma: no cover - needs a GPU
        import tensorrt as trt

        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_bytes(module, shape)):
            raise BackendUnavailable(f"TensorRT could not parse the ONNX graph: {parser.get_error(0)}")
        config = builder.create_builder_config()
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif self.precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
        engine = trt.Runtime(logger).deserialize_cuda_engine(builder.build_serialized_network(network, config))
        context = engine.create_execution_context()
        out_shape = tuple(module.float()(torch.randn(shape)).shape)
        x = torch.randn(shape, device="cuda")
        y = torch.empty(out_shape, device="cuda")
        context.set_tensor_address(engine.get_tensor_name(0), x.data_ptr())
        context.set_tensor_address(engine.get_tensor_name(1), y.data_ptr())
        stream = torch.cuda.current_stream().cuda_stream

        def run() -> None:
            context.execute_async_v3(stream)

        return _median_ms(run, self.settings, cuda_event_timer)


def make_timer(backend: str = "eager", device: str = "cpu", precision: str = "fp32",
               memory_format: str = "contiguous", threads: int | None = 1,
               settings: TimingSettings | None = None, batch: int = 1) -> OpTimer:
    timer = entry(backend).timer
    if timer is None:
        raise BackendUnavailable(f"backend {backend!r} cannot time single operators; "
                                 f"latency tables are built with one of {timing_backend_names()}")
    return resolve(timer)(device=device, precision=precision, memory_format=memory_format,
                          threads=threads, settings=settings, batch=batch)


def timer_for_table(table: LatencyTable, settings: TimingSettings | None = None) -> OpTimer:
    """A timer with the table's own setting, to measure missing entries or whole networks."""
    m = table.meta
    device = "cuda" if m.device.startswith("cuda") else "cpu"
    settings = settings or TimingSettings()
    if device == "cpu":
        settings.clock = m.clock
    return make_timer(m.backend, device, m.precision, m.memory_format, m.threads, settings, m.batch)


def measure_into(table: LatencyTable, specs: Iterable[OpSpec], timer: OpTimer, out: str | Path | None = None,
                 save_every: int = 10, progress: bool = True) -> LatencyTable:
    """Measure every spec the table lacks, saving atomically every ``save_every`` entries so that
    an interrupted build keeps what it measured (rerun the same command to resume)."""
    from tqdm import tqdm

    todo = [s for s in specs if s not in table]
    bar = tqdm(todo, desc="measuring", unit="op", disable=not progress, file=None)
    done = 0
    for spec in bar:
        bar.set_postfix_str(spec.key, refresh=False)
        table.set(spec, timer.time_spec(spec))
        done += 1
        if out is not None and done % save_every == 0:
            table.meta.date = now_iso()
            table.save(out)
    if out is not None and done:
        table.meta.date = now_iso()
        table.save(out)
    return table


def describe_environment() -> str:
    """One line for logs: torch version, threads, and what is set in OMP/MKL variables."""
    env = {k: v for k, v in os.environ.items() if k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), env {env}"


def build_table(specs: Iterable[OpSpec], timer: OpTimer, size: tuple[int, int], out: str | Path,
                save_every: int = 10, progress: bool = True) -> LatencyTable:
    """Measure ``specs`` into the table at ``out``, resuming it if it exists.

    An existing file must have been built with the same setting (device, backend, precision,
    memory format, size, batch); otherwise it is refused rather than silently mixed.
    """
    out = Path(out)
    fresh = timer.meta(size, source="fasterseg lut build")
    if out.exists():
        table = LatencyTable.load(out)
        if table.meta.setting() != fresh.setting():
            raise BackendUnavailable(
                f"{out}: exists with setting {table.meta.setting()}, but this build is {fresh.setting()}; "
                "choose another --out or the same setting to resume"
            )
        table.meta.versions = fresh.versions
    else:
        table = LatencyTable(fresh)
    return measure_into(table, specs, timer, out=out, save_every=save_every, progress=progress)
