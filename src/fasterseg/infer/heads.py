"""The two graphs every deploy path runs: the network alone, and network + label map.

``NetworkOnly`` stops at the 1/8 class scores (what "model-only" latency measures);
``Segmenter`` goes from a normalised image batch to a label map (or logits) at input size and
computes what ``FasterSegNet.forward`` (eval) followed by an argmax computes. Both pad
unconditionally instead of behind ``if pad``: a traced or exported graph must not bake in the
example's size (an ONNX graph with dynamic H, W exported from a multiple-of-32 example would
otherwise silently skip the padding).

The label map can be made three ways (``label_path``). ``exact`` resizes the class scores to the
input size and takes the argmax there: C full-size score maps written and read again, which on a
CPU costs more than the network (8.5 against 2.3 ms at 360x480, OpenVINO bf16). ``half`` and
``quarter`` take the argmax on scores resized to 1/2 or 1/4 of the input and repeat each label
over its 2x2 or 4x4 block (the nearest sample of the same align-corners grid), in uint8: the
label map then costs 0.1-0.2x the network; on CamVid's seq_val ``quarter`` scores 0.10 mIoU
below ``exact`` and ``half`` 0.02 above (docs/benchmarks.md, "Labels at the network's speed").
``auto`` chooses per input height (``backends.label_path_for``): quarter from 360 rows, half
under that, where quarter loses 0.35 mIoU. A traced or exported graph fixes one path, so it must be
given a concrete one (``export`` resolves ``auto`` from its example size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fasterseg.backends import LABEL_PATHS, label_path_for
from fasterseg.layers.rules import stride_padding
from fasterseg.layers.upsample import interpolate_aligned

_ARGMAX_STRIDE = {"exact": 1, "half": 2, "quarter": 4}


def pad_to_stride(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad bottom/right to a multiple of the network's stride (a no-op copy if already)."""
    pad_h, pad_w = stride_padding(x.shape[2], x.shape[3])
    return F.pad(x, (0, pad_w, 0, pad_h))


class NetworkOnly(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.logits8(pad_to_stride(x))


def _nearest_index(size: int, source: int, device: torch.device) -> torch.Tensor:
    """For each of ``size`` output positions, the nearest of ``source`` samples on the align-corners
    grid both span (position i sits at i * (source - 1) / (size - 1) of the source)."""
    step = (source - 1) / max(size - 1, 1)
    return torch.round(torch.arange(size, device=device, dtype=torch.float32) * step).long()


def _is_exporting() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


class Segmenter(nn.Module):
    """Normalised images (N, 3, H, W) -> labels (N, H, W), or logits if ``argmax`` is False.

    Labels are int64 on the ``exact`` path and uint8 on the others (up to 256 classes)."""

    def __init__(self, net: nn.Module, argmax: bool = True, label_path: str = "exact"):
        super().__init__()
        if label_path not in LABEL_PATHS:
            raise ValueError(f"label_path must be one of {LABEL_PATHS}, got {label_path!r}")
        self.net = net
        self.argmax = argmax
        self.label_path = label_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        padded = pad_to_stride(x)
        full_h, full_w = padded.shape[2], padded.shape[3]
        if self.label_path == "auto" and self.argmax and _is_exporting():
            raise ValueError("label path 'auto' chooses per input size, which a traced graph cannot do: "
                             "give the export a concrete one (backends.label_path_for)")
        low = self.net.logits8(padded)
        stride = _ARGMAX_STRIDE[label_path_for(self.label_path, height)] if self.argmax else 1
        if stride == 1:
            logits = interpolate_aligned(low, (full_h, full_w))
            logits = logits[:, :, :height, :width]
            return logits.argmax(1) if self.argmax else logits
        mid_h, mid_w = full_h // stride, full_w // stride
        scores = interpolate_aligned(low, (mid_h, mid_w))
        small = scores.argmax(1)
        if low.shape[1] <= 256:
            small = small.to(torch.uint8)  # 8x fewer bytes to spread over the full size
        rows = _nearest_index(full_h, mid_h, x.device)[:height]
        cols = _nearest_index(full_w, mid_w, x.device)[:width]
        return small.index_select(1, rows).index_select(2, cols)
