"""The networks' bilinear resize, and the same upsampling as two matrix products for the training loss.

:func:`interpolate_aligned` is the one resize every FasterSeg network, operator, supernet, deploy
head and latency-table piece uses: bilinear with aligned corners, as the official code.

Training upsamples every head's class scores to the crop's full resolution before the loss (the
official recipe). ``F.interpolate`` does that on a CPU with a gather forward and a scatter-add
backward over the full-resolution tensor, and for a channels_last input returns a channels_last
tensor that the log-softmax over classes then reads across. Bilinear resizing is separable and
linear, ``out = A_h @ x @ A_w.T`` with fixed interpolation matrices, so the same values (up to
float rounding) come from two matrix products whose backward is two more: on the development
CPU the upsample, log-softmax and their backward took 50 ms instead of 82 per head (batch 8,
11 classes, 288x384, timed alone); whole training steps are in ``benchmarks/train_speed.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def interpolate_aligned(x: torch.Tensor, size) -> torch.Tensor:
    """``F.interpolate(x, size, mode="bilinear", align_corners=True)``: the networks' resize."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def interpolation_matrix(n_in: int, n_out: int, align_corners: bool = True,
                         device: torch.device | None = None) -> torch.Tensor:
    """(n_out, n_in) float32 weights of 1-D linear interpolation, as ``F.interpolate`` samples.

    Output ``i`` samples the input at ``s = i * (n_in - 1) / (n_out - 1)`` with aligned corners,
    else at ``s = (i + 0.5) * n_in / n_out - 0.5`` clamped to the first and last input (PyTorch's
    convention for a given output size). Its weight on input ``j`` is the hat
    ``max(0, 1 - |s - j|)``: ``1 - frac(s)`` and ``frac(s)`` on the two neighbours, 0 elsewhere.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be positive, got n_in={n_in}, n_out={n_out}")
    i = torch.arange(n_out, dtype=torch.float64, device=device)
    if align_corners:
        src = i * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = ((i + 0.5) * (n_in / n_out) - 0.5).clamp(0, n_in - 1)
    grid = torch.arange(n_in, dtype=torch.float64, device=device)
    return (1 - (src[:, None] - grid[None, :]).abs()).clamp(min=0).float()


def resize_bilinear(x: torch.Tensor, size: tuple[int, int], align_corners: bool = True,
                    crop: tuple[int, int] | None = None) -> torch.Tensor:
    """``F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)`` in float32,
    then ``[..., :crop[0], :crop[1]]``: the same values, as a contiguous (N, C, H, W) tensor.

    Only the kept rows and columns are computed. Runs in float32 whatever autocast says (the
    scores feed a float32 log-softmax, as the interpolation did under CPU autocast).
    """
    if x.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) scores, got shape {tuple(x.shape)}")
    out_h, out_w = int(size[0]), int(size[1])
    keep_h, keep_w = (out_h, out_w) if crop is None else (min(crop[0], out_h), min(crop[1], out_w))
    rows = interpolation_matrix(x.shape[2], out_h, align_corners, x.device)[:keep_h]
    cols = interpolation_matrix(x.shape[3], out_w, align_corners, x.device)[:keep_w]
    with torch.autocast(x.device.type, enabled=False):
        return torch.matmul(torch.matmul(rows, x.float()), cols.t())


def upsample_aligned(x: torch.Tensor, scale: int, crop: tuple[int, int] | None = None) -> torch.Tensor:
    """``F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=True)``, then the crop
    (see :func:`resize_bilinear`)."""
    size = (x.shape[-2] * scale, x.shape[-1] * scale)  # resize_bilinear checks the shape
    return resize_bilinear(x, size, True, crop)
