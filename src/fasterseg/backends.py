"""Every way of running a network, in one registry, without importing torch.

An entry names the backend, says what it is, and points (as ``"module:attribute"``, imported
only when used) at what builds its deploy runner for ``predict``, ``bench`` and ``eval`` and,
where it can time single operators, at its timer for ``lut build``. The command line takes its
choices from here, so a new deploy path is one entry plus the function it points at.

``eager`` is plain PyTorch, the reference every other path must reproduce (latency tables built
before the registry call it ``torch``; that name is still read as ``eager``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from fasterseg.errors import BackendUnavailable

PRECISION_NAMES: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")
TABLE_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")  # latency tables: int8 speed depends on a calibrated graph
# How a deploy path turns class scores into labels (fasterseg.infer.heads): the argmax at the input
# size, or at 1/2 or 1/4 of it with each label repeated over its block; ``auto`` picks per input size.
LABEL_PATHS: tuple[str, ...] = ("auto", "exact", "half", "quarter")
DEFAULT_LABEL_PATH = "auto"  # what predict, bench, export --output labels and serve run unless told
# Measured (docs/benchmarks.md, "Labels at the network's speed"): quarter scores within 0.1 mIoU of
# exact on inputs 360 rows high or more (CamVid 360x480, synthetic 512x1024) but 0.35 below it at 256
# rows, where half still scores as exact; quarter costs 0.04-0.11x the network, half 0.14-0.34x.
QUARTER_MIN_ROWS = 360


def label_path_for(label_path: str, height: int) -> str:
    """The concrete label path for an input ``height`` rows high: ``auto`` is the cheapest path
    that scores within 0.2 mIoU of exact at that height (quarter from QUARTER_MIN_ROWS, else half);
    any other name is returned as it is."""
    if label_path not in LABEL_PATHS:
        raise ValueError(f"label path must be one of {LABEL_PATHS}, got {label_path!r}")
    if label_path != "auto":
        return label_path
    return "quarter" if height >= QUARTER_MIN_ROWS else "half"


@dataclass(frozen=True)
class BackendEntry:
    name: str
    summary: str
    runner: str  # "module:function" (model, RunnerOptions, torch.device) -> Runner
    timer: str | None = None  # "module:class" timing one operator module (latency tables), if it can
    precisions: tuple[str, ...] = ("fp32",)  # what its runner can run (int8 needs calibration images)


REGISTRY: dict[str, BackendEntry] = {e.name: e for e in (
    BackendEntry("eager", "plain PyTorch, fp32: the reference", "fasterseg.infer.runners:eager_runner",
                 "fasterseg.latency.measure:TorchTimer"),
    BackendEntry("optimized", "PyTorch with BatchNorm folded, channels_last, torch.compile, fp16/bf16, CUDA graphs",
                 "fasterseg.infer.runners:optimized_runner", precisions=("fp32", "fp16", "bf16")),
    BackendEntry("onnxruntime", "ONNX Runtime (CPU, or CUDA with onnxruntime-gpu); int8 from a calibrated QDQ graph",
                 "fasterseg.infer.runners:onnxruntime_runner", "fasterseg.latency.measure:OnnxRuntimeTimer",
                 precisions=("fp32", "int8")),
    BackendEntry("openvino", "OpenVINO on the CPU: fp32, bf16 on CPUs with bf16 units (AVX512-BF16, AMX), "
                 "int8 from a calibrated QDQ graph", "fasterseg.infer.runners:openvino_runner",
                 "fasterseg.latency.measure:OpenVinoTimer", precisions=("fp32", "bf16", "int8")),
    BackendEntry("tensorrt", "TensorRT (through ONNX Runtime for deploy; its own engine for tables)",
                 "fasterseg.infer.runners:tensorrt_runner", "fasterseg.latency.measure:TensorRTTimer",
                 precisions=("fp32", "fp16")),
)}

ALIASES: dict[str, str] = {"torch": "eager"}


def backend_names() -> tuple[str, ...]:
    """Every backend, for ``predict``, ``bench`` and ``eval``."""
    return tuple(REGISTRY)


def timing_backend_names() -> tuple[str, ...]:
    """The backends that can time single operators, for ``lut build``."""
    return tuple(name for name, e in REGISTRY.items() if e.timer)


def canonical(name: str) -> str:
    """The registry name of ``name`` (old names such as ``torch`` included)."""
    return ALIASES.get(name, name)


def entry(name: str) -> BackendEntry:
    name = canonical(name)
    if name not in REGISTRY:
        raise BackendUnavailable(f"backend must be one of {backend_names()}, got {name!r}")
    return REGISTRY[name]


def resolve(reference: str) -> Any:
    """The object a ``"module:attribute"`` reference names."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)
