"""int8 post-training quantisation of an exported ONNX graph, calibrated on real images.

The graph is rewritten in ONNX Runtime's QDQ form (QuantizeLinear/DequantizeLinear pairs around
each quantised operator) with per-channel int8 weights and uint8 activations whose ranges come
from calibration images. The same QDQ file runs int8 on ONNX Runtime (VNNI/AMX kernels) and on
OpenVINO, which reads the pairs as its own FakeQuantize, so one file serves both deploy paths.

Calibration images must be of the dataset the model predicts (its class count) and all of one
size; a static graph is calibrated at the one size it accepts. Anything else is refused by name,
because ranges measured on other data silently cost accuracy.
"""

from __future__ import annotations

import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fasterseg.errors import CalibrationError, ExportError

DEFAULT_CALIBRATION_IMAGES = 32


@dataclass(frozen=True)
class Calibration:
    """Normalised calibration batches (1, 3, H, W) float32, all of one size, and where they came from."""

    batches: tuple[np.ndarray, ...]
    source: str
    size: tuple[int, int]

    def describe(self) -> str:
        return f"{len(self.batches)} images of {self.source} at {self.size[0]}x{self.size[1]}"


def calibration_set(spec: str, split: str, count: int, num_classes: int,
                    size: tuple[int, int] | None = None) -> Calibration:
    """``count`` images spread evenly over ``split`` of dataset ``spec``, normalised as for inference.

    Refuses a dataset whose class count is not ``num_classes`` (the model's), an image whose size
    differs from ``size`` (or, without ``size``, from the first image's), and ``count`` < 1.
    """
    from fasterseg.data.base import read_image
    from fasterseg.data.registry import split_images
    from fasterseg.data.transforms import EvalTransform

    if count < 1:
        raise CalibrationError(f"calibration images: need at least 1, got {count}")
    info, images = split_images(spec, split)  # labels are not read, nor needed
    classes = info.num_classes
    if classes != num_classes:
        raise CalibrationError(f"calibration data {spec} ({split}) has {classes} classes, but the model predicts "
                               f"{num_classes}: calibrate on the data the model was trained for")
    n = len(images)
    indices = sorted({int(i) for i in np.linspace(0, n - 1, num=min(count, n))})
    transform = EvalTransform()
    batches = []
    for i in indices:
        image = read_image(images[i])
        found = tuple(image.shape[:2])
        if size is None:
            size = found
        if found != tuple(size):
            raise CalibrationError(f"{images[i]}: calibration image is {found[0]}x{found[1]}, but the graph is calibrated "
                                   f"at {size[0]}x{size[1]}; use images of the deployed size (or export at their size)")
        no_label = np.zeros(found, np.uint8)
        batches.append(transform(image, no_label)[0].unsqueeze(0).numpy().astype(np.float32))
    return Calibration(tuple(batches), f"{spec} ({split})", tuple(size))


class _Reader:
    """ONNX Runtime's calibration-reader protocol over our batches."""

    def __init__(self, calibration: Calibration, input_name: str):
        self._batches = iter(calibration.batches)
        self._name = input_name

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {self._name: batch}

    def rewind(self) -> None:  # part of the protocol; one pass is all we give
        pass


QUANTIZED_OPS = ("Conv",)


def has_int8_dot_product(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this x86 CPU sums uint8 x int8 products in 32 bits (AVX512-VNNI, AVX-VNNI or AMX), or is not x86.

    Why: without VNNI, x86 int8 kernels (ONNX Runtime's and OpenVINO's) add pairs of products in a
    saturating 16-bit register, and full 8-bit weights overflow it: on an AVX2-only EPYC the built-in
    model's int8 labels matched fp32 on only 74% of the pixels of held-out frames. Weights quantised to
    7 bits (``reduce_range``) stay inside it. Where the flags cannot be read, assume no VNNI (the safe side).
    """
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return True
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx512vnni", "avx_vnni", "amx_int8"})


def quantize_onnx(fp32_path: str | Path, out: str | Path, calibration: Calibration, input_name: str = "image",
                  op_types: tuple[str, ...] | None = QUANTIZED_OPS) -> Path:
    """Write the int8 QDQ version of ``fp32_path`` to ``out`` (atomically: a failure leaves no file).

    Convolutions (nearly all of the multiply-accumulates) are quantised: weights symmetric int8
    per output channel, their inputs uint8 with min/max ranges observed on the calibration images.
    Everything else stays in float: quantising the resizes and additions too made the whole graph
    slower end to end on OpenVINO (the official student at 1024x2048: 122 ms against 73 ms with
    convolutions alone and the rest in bf16), because the full-resolution resize of the class
    scores then runs through quantise/dequantise pairs. ``op_types=None`` quantises every
    operator ONNX Runtime can.
    """
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise CalibrationError("int8 quantisation needs onnxruntime: pip install 'fasterseg[deploy]'") from None
    from fasterseg.utils.io import atomic_path

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="fasterseg-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            # ONNX's own shape inference: the symbolic one gives up on graphs with dynamic H, W.
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            with atomic_path(out) as target:
                quantize_static(str(prepared), str(target), _Reader(calibration, input_name),
                                quant_format=QuantFormat.QDQ, per_channel=True,
                                op_types_to_quantize=list(op_types) if op_types else None,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax, reduce_range=not has_int8_dot_product(),
                                extra_options={"CalibTensorRangeSymmetric": False})
                _carry_metadata(fp32_path, target)
        except Exception as exc:  # the quantiser raises bare Exceptions; name the graph
            raise ExportError(f"{fp32_path}: int8 quantisation failed: {type(exc).__name__}: {exc}") from exc
    return out


def _carry_metadata(source: str | Path, target: Path) -> None:
    """The fp32 graph's ``metadata_props`` (normalisation, classes) onto the int8 one, which the
    quantiser drops."""
    import onnx

    from fasterseg.infer.export import set_metadata

    props = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
    if props:
        set_metadata(target, props)


def compare_graphs(fp32_path: Path, int8_path: Path, calibration: Calibration, output: str, images: int = 4) -> str:
    """How the int8 graph's output differs from the fp32 graph's on the first calibration images:
    label agreement (labels, or the argmax of logits) and, for logits, the largest difference."""
    from fasterseg.infer.export import ort_session

    ref, got = ort_session(fp32_path), ort_session(int8_path)
    equal = total = 0
    worst = 0.0
    for batch in calibration.batches[:images]:
        a = ref.run(None, {"image": batch})[0]
        b = got.run(None, {"image": batch})[0]
        if output != "labels":
            worst = max(worst, float(np.abs(a - b).max()))
            a, b = a.argmax(1), b.argmax(1)
        equal += int((a == b).sum())
        total += a.size
    text = f"labels agree on {100 * equal / total:.2f}% of pixels"
    return text if output == "labels" else f"{text}, max |int8 - fp32| = {worst:.3g}"
