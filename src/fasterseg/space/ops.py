"""The candidate operators of FasterSeg, defined once.

``PRIMITIVES`` is the single table of truth: its order is the order of the architecture
parameters (alphas) in the search and in the official ``arch_*.pt`` files. Every operator maps
``C_in`` channels to ``C_out`` channels at stride 1 or 2; parameter names follow the official
implementation so that its checkpoints map onto ours by renaming module prefixes only.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


def _half(x: torch.Tensor) -> torch.Tensor:
    """Bilinear resize to half of the (floored) spatial size, corners aligned as in the paper code."""
    return F.interpolate(
        x, size=(x.shape[2] // 2, x.shape[3] // 2), mode="bilinear", align_corners=True
    )


def _resize_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[2:], mode="bilinear", align_corners=True)


class ConvNorm(nn.Module):
    """conv (no bias) -> BN -> ReLU, kept in one Sequential named ``conv``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1, padding: int | None = None):
        super().__init__()
        if padding is None:
            padding = (kernel_size - stride + 1) // 2
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Conv(nn.Module):
    """``conv``: one 3x3 conv-BN-ReLU (the official BasicResidual1x)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv1(x)))


class ConvDownUp(nn.Module):
    """``conv_downup``: the 3x3 conv runs at half resolution (zoomed convolution); cheaper,
    larger receptive field. At stride 1 the result is resized back to the input size."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(_half(x)))
        if self.stride == 1:
            out = _resize_like(out, x)
        return F.relu(out)


class Conv2x(nn.Module):
    """``conv_2x``: two stacked 3x3 conv-BN-ReLU (the official BasicResidual2x)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)))


class Conv2xDownUp(nn.Module):
    """``conv_2x_downup``: two zoomed 3x3 convs at half resolution."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(_half(x))))
        out = self.bn2(self.conv2(out))
        if self.stride == 1:
            out = _resize_like(out, x)
        return F.relu(out)


class Skip(nn.Module):
    """``skip``: identity at stride 1 (channels must match); at stride 2 the factorized
    reduction of DARTS: two offset 1x1 stride-2 convs, concatenated, BN, ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        if stride == 1:
            if c_in != c_out:
                raise ValueError(f"skip at stride 1 needs c_in == c_out, got {c_in} -> {c_out}")
        else:
            if c_out % 2:
                raise ValueError(f"skip at stride 2 needs an even c_out, got {c_out}")
            self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, 2, 0, bias=False)
            self.conv2 = nn.Conv2d(c_in, c_out // 2, 1, 2, 0, bias=False)
            self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x
        out = torch.cat([self.conv1(x), self.conv2(x[:, :, 1:, 1:])], dim=1)
        return F.relu(self.bn(out))


OpFactory = Callable[[int, int, int], nn.Module]

# Name -> constructor(c_in, c_out, stride). The order is the alpha order; do not reorder.
PRIMITIVES: dict[str, OpFactory] = {
    "skip": Skip,
    "conv": Conv,
    "conv_downup": ConvDownUp,
    "conv_2x": Conv2x,
    "conv_2x_downup": Conv2xDownUp,
}
OP_NAMES: tuple[str, ...] = tuple(PRIMITIVES)


def build_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    return PRIMITIVES[name](c_in, c_out, stride)
