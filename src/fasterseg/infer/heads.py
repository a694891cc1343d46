"""The two graphs every deploy path runs: the network alone, and network + label map.

``NetworkOnly`` stops at the 1/8 class scores (what "model-only" latency measures);
``Segmenter`` goes from a normalised image batch to a label map (or logits) at input size and
computes exactly what ``FasterSegNet.forward`` (eval) followed by an argmax computes. Both pad
unconditionally instead of behind ``if pad``: a traced or exported graph must not bake in the
example's size (an ONNX graph with dynamic H, W exported from a multiple-of-32 example would
otherwise silently skip the padding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fasterseg.layers.rules import OUTPUT_STRIDE_MAX


def pad_to_stride(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad bottom/right to a multiple of the network's stride (a no-op copy if already)."""
    return F.pad(x, (0, (-x.shape[3]) % OUTPUT_STRIDE_MAX, 0, (-x.shape[2]) % OUTPUT_STRIDE_MAX))


class NetworkOnly(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.logits8(pad_to_stride(x))


class Segmenter(nn.Module):
    """Normalised images (N, 3, H, W) -> labels (N, H, W) int64, or logits if ``argmax`` is False."""

    def __init__(self, net: nn.Module, argmax: bool = True):
        super().__init__()
        self.net = net
        self.argmax = argmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        padded = pad_to_stride(x)
        low = self.net.logits8(padded)
        logits = F.interpolate(low, size=(padded.shape[2], padded.shape[3]), mode="bilinear", align_corners=True)
        logits = logits[:, :, :height, :width]
        return logits.argmax(1) if self.argmax else logits
