"""ONNX export of a fasterseg network, checked against PyTorch with ONNX Runtime.

The graph keeps the training-time resizes (bilinear, corners aligned: ONNX ``Resize`` with
``coordinate_transformation_mode=align_corners``). With ``argmax`` the graph ends in an
``ArgMax`` over classes and returns an int64 label map, so a deployment never moves the
full-resolution logits off the device.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fasterseg.backends import label_path_for
from fasterseg.errors import ExportError
from fasterseg.infer.heads import NetworkOnly, Segmenter
from fasterseg.utils.io import atomic_path

DEFAULT_OPSET = 18
OUTPUTS = ("logits", "labels", "logits8")


@dataclass
class ExportReport:
    path: Path
    size: tuple[int, int]
    dynamic: bool
    output: str
    opset: int
    max_abs_diff: float | None = None  # logits outputs
    label_agreement: float | None = None  # labels output: fraction of equal pixels

    def summary(self) -> str:
        check = (f"max |onnx - torch| = {self.max_abs_diff:.2e}" if self.max_abs_diff is not None
                 else f"labels agree on {100 * self.label_agreement:.4f}% of pixels")
        kind = "dynamic N, H, W" if self.dynamic else f"{self.size[0]}x{self.size[1]}"
        return f"wrote {self.path} (opset {self.opset}, {kind}, output {self.output}); onnxruntime check: {check}"


def export_module(net: nn.Module, output: str, label_path: str = "exact") -> nn.Module:
    if output not in OUTPUTS:
        raise ExportError(f"output must be one of {OUTPUTS}, got {output!r}")
    if output == "logits8":
        return NetworkOnly(net).eval()
    return Segmenter(net, argmax=output == "labels", label_path=label_path).eval()


def model_metadata(meta, output: str, label_path: str = "exact") -> dict[str, str]:
    """What a consumer of the ONNX file needs from the model file (ONNX ``metadata_props``): the
    input normalisation, the class names and colours, what the output holds (``label_path`` as
    the graph runs it: concrete, not ``auto``)."""
    if label_path not in ("exact", "half", "quarter"):
        raise ExportError(f"model_metadata: give the graph's concrete label path, got {label_path!r}")
    extra = meta.extra or {}
    stride = meta.genotype.output_stride if meta.genotype is not None else 8
    props = {
        "fasterseg.input": "image: float32 N x 3 x H x W, RGB in [0, 1], normalised as (x - mean) / std per channel",
        "fasterseg.mean": json.dumps(list(meta.mean)),
        "fasterseg.std": json.dumps(list(meta.std)),
        "fasterseg.class_names": json.dumps(list(meta.class_names)),
        "fasterseg.output": {"logits": "class scores N x C x H x W at the input size",
                             "labels": ("class index per pixel N x H x W (int64) at the input size" if label_path == "exact" else
                                        f"class index per pixel N x H x W (uint8) at the input size, the argmax taken at "
                                        f"1/{2 if label_path == 'half' else 4} of it (label path {label_path})"),
                             "logits8": f"class scores N x C x H/{stride} x W/{stride}, before the final resize"}[output],
        "fasterseg.network": meta.network,
    }
    if meta.genotype is not None:
        props["fasterseg.genotype"] = meta.genotype.to_json()
    if extra.get("palette"):
        props["fasterseg.palette"] = json.dumps(extra["palette"])
    return props


def set_metadata(path: str | Path, props: dict[str, str]) -> None:
    """Put ``props`` into the ONNX file's ``metadata_props`` (in place: call on a file not yet renamed into place)."""
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **props})
    onnx.save(model, str(path))


def export_onnx(net: nn.Module, out: str | Path, size: tuple[int, int] = (1024, 2048), dynamic: bool = False,
                output: str = "logits", opset: int = DEFAULT_OPSET, check: bool = True,
                tolerance: float = 1e-3, metadata: dict[str, str] | None = None,
                label_path: str = "exact") -> ExportReport:
    """Write ``net`` as ONNX to ``out`` atomically; with ``check``, compare with ONNX Runtime.

    ``size`` is the example (and, unless ``dynamic``, the only) input size (height, width);
    ``metadata`` goes into the file's ``metadata_props`` (see :func:`model_metadata`);
    ``label_path`` is how the ``labels`` output is made (:mod:`fasterseg.infer.heads`); a graph
    fixes one, so ``auto`` is resolved from the example ``size``.
    """
    if opset < 17:
        raise ExportError(f"opset must be >= 17 (bilinear Resize semantics we rely on), got {opset}")
    out = Path(out)
    module = export_module(net.cpu().eval(), output, label_path_for(label_path, size[0]))
    example = torch.randn(1, 3, *size)
    dynamic_shapes = None
    if dynamic:
        dim = torch.export.Dim
        dynamic_shapes = ({0: dim("batch", min=1, max=1024), 2: dim.DYNAMIC, 3: dim.DYNAMIC},)
    # The exporter logs a warning per torchvision op it cannot register; none are used here.
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(module, (example,), dynamo=True, opset_version=opset,
                                        input_names=["image"], output_names=[output],
                                        dynamic_shapes=dynamic_shapes, external_data=False, verbose=False)
            program.save(str(tmp), external_data=False)
            if metadata:
                set_metadata(tmp, metadata)
        except Exception as exc:  # the exporter raises many types; report them as one
            raise ExportError(f"{out}: ONNX export failed: {type(exc).__name__}: {exc}") from exc
        finally:
            registration_log.setLevel(level)
    report = ExportReport(out, tuple(size), dynamic, output, opset)
    if check:
        check_sizes = [tuple(size)]
        if dynamic:
            check_sizes.append((max(8, size[0] // 2 + 13), max(8, size[1] // 2 + 7)))
        for check_size in check_sizes:
            _check_against_torch(module, out, check_size, output, tolerance, report)
    return report


def onnx_bytes(module: nn.Module, shape: tuple[int, ...]) -> bytes:
    """ONNX bytes of one operator module for a fixed input shape, for latency tables (opset 17,
    the TorchScript exporter: seconds faster per small module than the dynamo export above)."""
    import io

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.float().eval(), (torch.randn(shape),), buf, input_names=["input"],
                          output_names=["output"], opset_version=17, dynamo=False)
    return buf.getvalue()


def ort_session(path: str | Path, threads: int | None = None, providers: list[str] | None = None):
    """An ONNX Runtime session with all graph optimisations on. Its threads sleep when a run ends
    instead of spinning for the next one: spinning buys ONNX Runtime about 1 ms a run at 360x480
    but takes the cores from whatever runs next (decoding, another runtime: OpenVINO after a
    spinning ONNX Runtime measured 17.8 instead of 11.3 ms on a 2-core machine)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("onnxruntime is not installed: pip install 'fasterseg[deploy]' (or export with --no-check)") from None

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])


def _check_against_torch(module: nn.Module, path: Path, size: tuple[int, int], output: str,
                         tolerance: float, report: ExportReport) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, *size, generator=generator)
    with torch.no_grad():
        expected = module(x).numpy()
    got = ort_session(path).run(None, {"image": x.numpy()})[0]
    if got.shape != expected.shape:
        raise ExportError(f"{path}: onnxruntime output shape {got.shape} != PyTorch {expected.shape} at {size}")
    if output == "labels":
        agreement = float(np.mean(got == expected))
        report.label_agreement = min(agreement, report.label_agreement or 1.0)
        if agreement < 0.999:
            raise ExportError(f"{path}: onnxruntime labels agree with PyTorch on only {100 * agreement:.3f}% of pixels")
    else:
        diff = float(np.abs(got - expected).max())
        report.max_abs_diff = max(diff, report.max_abs_diff or 0.0)
        if diff > tolerance:
            raise ExportError(f"{path}: onnxruntime differs from PyTorch by {diff:.3g} > {tolerance:g} at {size}")
