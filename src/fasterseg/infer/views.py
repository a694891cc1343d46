"""Several views of one image: sliding windows, scales and flips, averaged.

:func:`sliding_window_scores` is the one tiling of an image (``predict --tile`` and
``eval --window`` both use it); :func:`predict_probabilities` averages class probabilities over
windows, scales and flips at the input's size, so the caller only takes an argmax, and
:func:`dataset_predictor` applies it to a dataset's images for ``eval --model``. Inputs are
normalised image tensors (N, 3, H, W).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fasterseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class InferenceOptions:
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    window: tuple[int, int] | None = None  # (h, w) for sliding-window inference; None: whole image
    overlap: float = 1 / 3  # fraction of the window shared by neighbours


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets covering ``length``: every ``stride``, the last one flush with the end."""
    if window >= length:
        return [0]
    starts = list(range(0, length - window, stride))
    starts.append(length - window)
    return starts


def sliding_window_scores(score: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, window: tuple[int, int],
                          overlap: float, num_classes: int, min_size: int = 1) -> torch.Tensor:
    """Average ``score`` (class scores at its input's size) over overlapping windows of ``x``.

    Windows larger than the image shrink to it, smaller than ``min_size`` grow to it (the
    network's smallest input; ``x`` must be at least that); neighbours share ``overlap`` of a
    window, rounded down to whole pixels of sharing.
    """
    n, _, h, w = x.shape
    wh, ww = min(max(window[0], min_size), h), min(max(window[1], min_size), w)
    sh = max(1, int(math.ceil(wh * (1 - overlap))))
    sw = max(1, int(math.ceil(ww * (1 - overlap))))
    out = torch.zeros(n, num_classes, h, w, device=x.device)
    count = torch.zeros(1, 1, h, w, device=x.device)
    for top in window_starts(h, wh, sh):
        for left in window_starts(w, ww, sw):
            out[:, :, top: top + wh, left: left + ww] += score(x[:, :, top: top + wh, left: left + ww]).float()
            count[:, :, top: top + wh, left: left + ww] += 1
    return out / count


@torch.no_grad()
def predict_probabilities(model: nn.Module, x: torch.Tensor, options: InferenceOptions = InferenceOptions(),
                          num_classes: int | None = None) -> torch.Tensor:
    """Softmax probabilities at the input size, averaged over scales and flips."""
    num_classes = num_classes or model.num_classes
    h, w = x.shape[-2:]
    total = None
    for scale in options.scales:
        xs = x if scale == 1.0 else F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        views = [False, True] if options.flip else [False]
        for flipped in views:
            xv = xs.flip(-1) if flipped else xs
            if options.window:
                logits = sliding_window_scores(model, xv, options.window, options.overlap, num_classes)
            else:
                logits = model(xv)
            if flipped:
                logits = logits.flip(-1)
            if logits.shape[-2:] != (h, w):
                logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            prob = logits.softmax(1)
            total = prob if total is None else total + prob
    return total / (len(options.scales) * (2 if options.flip else 1))


def dataset_predictor(model: nn.Module, dataset, options: InferenceOptions = InferenceOptions(),
                      device: str | torch.device = "cpu", runner=None) -> Callable[[int], torch.Tensor]:
    """``predict(i)`` -> the train-id map of ``dataset``'s image ``i`` (normalised with the model
    file's mean and std), from the probabilities averaged over ``options``' views, or, given a
    deploy ``runner`` (:mod:`fasterseg.infer.runners`), from its labels of the whole image."""
    from fasterseg.data.transforms import normalize, to_tensors

    meta = getattr(model, "meta", None)
    mean, std = (meta.mean, meta.std) if meta is not None else (IMAGENET_MEAN, IMAGENET_STD)

    def predict(i: int) -> torch.Tensor:
        image, label = dataset[i]
        img, _ = to_tensors(image, label)
        x = normalize(img, mean, std)[None].to(device)
        if runner is not None:
            return runner.labels(x.to(runner.device))[0].cpu()
        return predict_probabilities(model, x, options).argmax(1)[0].cpu()

    return predict
