"""The candidate operators of FasterSeg, defined once.

``PRIMITIVES`` is the single table of truth: its order is the order of the architecture
parameters (alphas) in the search and in the official ``arch_*.pt`` files. Every operator maps
``C_in`` channels to ``C_out`` channels at stride 1 or 2; parameter names follow the official
implementation so that its checkpoints map onto ours by renaming module prefixes only.

Given ``widths`` (the search's width multipliers), an operator is built *slimmable*: the same
forward code runs on :class:`~fasterseg.layers.slimmable.SlimConv2d` (weights sliced to the active
width) and :class:`~fasterseg.layers.slimmable.SlimBatchNorm2d` (one BN per width). At full
width a slimmable operator computes exactly what the plain one computes, with the same names
(``bn1.bn.<k>.weight`` standing for ``bn1.weight``), so the supernet can hand its weights to a
derived network (:func:`~fasterseg.layers.slimmable.active_state`). The one exception is ``skip``
at stride 1, see :class:`Skip`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fasterseg.layers.names import OP_NAMES
from fasterseg.layers.rules import reduction_fits, width_channels
from fasterseg.layers.slimmable import SlimBatchNorm2d, SlimConv2d
from fasterseg.layers.upsample import interpolate_aligned

Widths = Sequence[float] | None


def _conv(c_in: int, c_out: int, kernel_size: int, stride: int, widths: Widths,
          out_per_width: Sequence[int] | None = None) -> nn.Conv2d:
    """A bias-free conv, slimmable when ``widths`` is given (padding keeps size / stride)."""
    padding = kernel_size // 2
    if widths is None:
        return nn.Conv2d(c_in, c_out, kernel_size, stride, padding, bias=False)
    if out_per_width is None:
        out_per_width = width_channels(c_out, widths)
    return SlimConv2d(c_in, c_out, kernel_size, stride, padding, out_per_width)


def _bn(channels: int, widths: Widths) -> nn.Module:
    return nn.BatchNorm2d(channels) if widths is None else SlimBatchNorm2d(width_channels(channels, widths))


def _half(x: torch.Tensor) -> torch.Tensor:
    """Bilinear resize to half of the (floored) spatial size, corners aligned as in the paper code."""
    return interpolate_aligned(x, (x.shape[2] // 2, x.shape[3] // 2))


def _resize_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return interpolate_aligned(x, ref.shape[2:])


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

    def __init__(self, c_in: int, c_out: int, stride: int = 1, widths: Widths = None):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.conv1 = _conv(c_in, c_out, 3, stride, widths)
        self.bn1 = _bn(c_out, widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv1(x)))


class ConvDownUp(nn.Module):
    """``conv_downup``: the 3x3 conv runs at half resolution (zoomed convolution); cheaper,
    larger receptive field. At stride 1 the result is resized back to the input size."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, widths: Widths = None):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.conv1 = _conv(c_in, c_out, 3, 1, widths)
        self.bn1 = _bn(c_out, widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(_half(x)))
        if self.stride == 1:
            out = _resize_like(out, x)
        return F.relu(out)


class Conv2x(nn.Module):
    """``conv_2x``: two stacked 3x3 conv-BN-ReLU (the official BasicResidual2x)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, widths: Widths = None):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.conv1 = _conv(c_in, c_out, 3, stride, widths)
        self.bn1 = _bn(c_out, widths)
        self.conv2 = _conv(c_out, c_out, 3, 1, widths)
        self.bn2 = _bn(c_out, widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)))


class Conv2xDownUp(nn.Module):
    """``conv_2x_downup``: two zoomed 3x3 convs at half resolution."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, widths: Widths = None):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.conv1 = _conv(c_in, c_out, 3, 1, widths)
        self.bn1 = _bn(c_out, widths)
        self.conv2 = _conv(c_out, c_out, 3, 1, widths)
        self.bn2 = _bn(c_out, widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(_half(x))))
        out = self.bn2(self.conv2(out))
        if self.stride == 1:
            out = _resize_like(out, x)
        return F.relu(out)


class Skip(nn.Module):
    """``skip``: identity at stride 1 (channels must match); at stride 2 the factorized
    reduction of DARTS: two offset 1x1 stride-2 convs, concatenated, BN, ReLU.

    Slimmable at stride 1 it cannot be an identity, since the search changes widths between
    cells: like the official search it is then a 1x1 conv-BN-ReLU (``conv1``, ``bn``). Derived
    networks never carry such a cell (derivation prunes or replaces every skip it meets), so
    nothing of it is ever handed out.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, widths: Widths = None):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.project = stride == 1 and widths is not None
        if stride == 1 and widths is None:
            if c_in != c_out:
                raise ValueError(f"skip at stride 1 needs c_in == c_out, got {c_in} -> {c_out}")
        elif self.project:
            self.conv1 = _conv(c_in, c_out, 1, 1, widths)
            self.bn = _bn(c_out, widths)
        else:
            if not reduction_fits(c_out):
                raise ValueError(f"skip at stride 2 needs an even c_out, got {c_out}")
            halves = None
            if widths is not None:
                full = width_channels(c_out, widths)
                if not all(reduction_fits(c) for c in full):
                    raise ValueError(f"skip at stride 2 needs an even c_out at every width, got {full}")
                halves = [c // 2 for c in full]
            self.conv1 = _conv(c_in, c_out // 2, 1, 2, widths, halves)
            self.conv2 = _conv(c_in, c_out // 2, 1, 2, widths, halves)
            self.bn = _bn(c_out, widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.project:
            return F.relu(self.bn(self.conv1(x)))
        if self.stride == 1:
            return x
        out = torch.cat([self.conv1(x), self.conv2(x[:, :, 1:, 1:])], dim=1)
        return F.relu(self.bn(out))


OpFactory = Callable[..., nn.Module]

# Name -> constructor(c_in, c_out, stride, widths=None). The order is the alpha order; do not reorder.
PRIMITIVES: dict[str, OpFactory] = {
    "skip": Skip,
    "conv": Conv,
    "conv_downup": ConvDownUp,
    "conv_2x": Conv2x,
    "conv_2x_downup": Conv2xDownUp,
}
if tuple(PRIMITIVES) != OP_NAMES:  # one order everywhere: the alpha order
    raise ImportError(f"layers.ops PRIMITIVES {tuple(PRIMITIVES)} disagree with layers.names.OP_NAMES {OP_NAMES}")


def build_op(name: str, c_in: int, c_out: int, stride: int, widths: Widths = None) -> nn.Module:
    """Operator ``name``; slimmable over the multipliers ``widths`` of ``c_out`` when given."""
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    return PRIMITIVES[name](c_in, c_out, stride, widths=widths)
