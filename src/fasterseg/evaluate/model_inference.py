"""Model logits for evaluation: whole image or sliding window, optional multi-scale and flip.

All variants return class probabilities averaged over the views, at the input's size, so the
caller only takes an argmax. Inputs are normalised image tensors (N, 3, H, W).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class InferenceOptions:
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    window: tuple[int, int] | None = None  # (h, w) for sliding-window inference; None: whole image
    overlap: float = 1 / 3  # fraction of the window shared by neighbours


def _windows(length: int, window: int, stride: int) -> list[int]:
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def sliding_window_logits(model: nn.Module, x: torch.Tensor, window: tuple[int, int], overlap: float,
                          num_classes: int) -> torch.Tensor:
    """Average the logits of overlapping windows (windows larger than the image shrink to it)."""
    n, _, h, w = x.shape
    wh, ww = min(window[0], h), min(window[1], w)
    sh = max(1, int(math.ceil(wh * (1 - overlap))))
    sw = max(1, int(math.ceil(ww * (1 - overlap))))
    out = x.new_zeros(n, num_classes, h, w)
    count = x.new_zeros(1, 1, h, w)
    for top in _windows(h, wh, sh):
        for left in _windows(w, ww, sw):
            out[:, :, top: top + wh, left: left + ww] += model(x[:, :, top: top + wh, left: left + ww])
            count[:, :, top: top + wh, left: left + ww] += 1
    return out / count


@torch.no_grad()
def predict_probabilities(model: nn.Module, x: torch.Tensor, options: InferenceOptions = InferenceOptions(),
                          num_classes: int | None = None) -> torch.Tensor:
    """Softmax probabilities at the input size, averaged over scales and flips."""
    num_classes = num_classes or model.genotype.num_classes
    h, w = x.shape[-2:]
    total = None
    for scale in options.scales:
        xs = x if scale == 1.0 else F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        views = [False, True] if options.flip else [False]
        for flipped in views:
            xv = xs.flip(-1) if flipped else xs
            if options.window:
                logits = sliding_window_logits(model, xv, options.window, options.overlap, num_classes)
            else:
                logits = model(xv)
            if flipped:
                logits = logits.flip(-1)
            if logits.shape[-2:] != (h, w):
                logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            prob = logits.softmax(1)
            total = prob if total is None else total + prob
    return total / (len(options.scales) * (2 if options.flip else 1))
