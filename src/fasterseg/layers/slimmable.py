"""Slimmable layers: one weight tensor serving every width choice of the search.

A :class:`SlimConv2d` keeps the weight of its widest form and uses its leading slice: as many
input channels as the incoming tensor has, and as many output channels as the active width
asks for. A :class:`SlimBatchNorm2d` keeps one BatchNorm per width choice, because the
statistics of a 32-channel and of a 96-channel slice of the same layer are different
distributions (the "switchable BN" of slimmable networks, as the official search uses).

The operators in :mod:`fasterseg.layers.ops` build these layers when given ``widths`` and plain
``nn.Conv2d``/``nn.BatchNorm2d`` otherwise, so the supernet and the derived networks run the same
operator code. :func:`active_state` cuts out the plain layer's tensors for one width.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _LeadingSlice(torch.autograd.Function):
    """``weight[:c_out, :c_in]`` whose backward adds the slice's gradient into ``weight.grad`` in
    place (allocated once, zero-filled) instead of handing autograd a zero-filled full-size tensor
    to add, once per use. A supernet step uses each conv four times or more (sandwich widths,
    teacher and student): on a 2-core CPU those fills and adds were a fifth of the step
    (``benchmarks/supernet_speed.py``). The gradient values are the same sums."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, c_out: int, c_in: int) -> torch.Tensor:
        ctx.weight, ctx.c_out, ctx.c_in = weight, c_out, c_in
        return weight[:c_out, :c_in]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        weight = ctx.weight
        if weight.grad is None:
            weight.grad = torch.zeros_like(weight)
        weight.grad[: ctx.c_out, : ctx.c_in].add_(grad)
        return None, None, None


def leading_slice(weight: torch.Tensor, c_out: int, c_in: int) -> torch.Tensor:
    """``weight[:c_out, :c_in]``; while autograd records, its gradient goes straight into
    ``weight.grad`` (see :class:`_LeadingSlice`)."""
    if weight.requires_grad and torch.is_grad_enabled() and weight.is_leaf:
        return _LeadingSlice.apply(weight, c_out, c_in)
    return weight[:c_out, :c_in]


class SlimConv2d(nn.Conv2d):
    """A bias-free conv whose weight is sliced to ``[:active_out, :x.shape[1]]``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int,
                 out_per_width: Sequence[int]):
        super().__init__(c_in, c_out, kernel_size, stride, padding, bias=False)
        if max(out_per_width) > c_out or min(out_per_width) < 1:
            raise ValueError(f"widths need 1..{c_out} output channels, got {list(out_per_width)}")
        self.out_per_width = tuple(int(c) for c in out_per_width)
        self.active_out = self.out_per_width[-1]

    def set_width(self, index: int) -> None:
        self.active_out = self.out_per_width[index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in = x.shape[1]
        if c_in > self.in_channels:
            raise ValueError(f"input has {c_in} channels, this layer holds at most {self.in_channels}")
        weight = leading_slice(self.weight, self.active_out, c_in)
        return F.conv2d(x, weight, None, self.stride, self.padding, self.dilation, self.groups)


class SlimBatchNorm2d(nn.Module):
    """One BatchNorm2d per width choice (``bn.<k>``); the active one normalises."""

    def __init__(self, channels_per_width: Sequence[int]):
        super().__init__()
        self.bn = nn.ModuleList(nn.BatchNorm2d(c) for c in channels_per_width)
        self.active = len(self.bn) - 1

    def set_width(self, index: int) -> None:
        self.active = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn[self.active]
        if x.shape[1] != bn.num_features:
            raise ValueError(
                f"input has {x.shape[1]} channels but the BN of width choice {self.active} has {bn.num_features}"
            )
        return bn(x)


def set_active_width(module: nn.Module, index: int) -> None:
    """Switch every slimmable layer inside ``module`` to width choice ``index``."""
    for m in module.modules():
        if isinstance(m, (SlimConv2d, SlimBatchNorm2d)):
            m.set_width(index)


def active_state(slim: nn.Module, plain: nn.Module, index: int) -> dict[str, torch.Tensor]:
    """The tensors of ``plain`` (the same operator built without widths) cut from ``slim``.

    Convs give their leading ``[:C_out, :C_in]`` slice; a slimmable BN gives the statistics and
    affine parameters of width choice ``index`` (``x.bn.<index>.y`` becomes ``x.y``).
    Raises ValueError when ``plain`` does not fit inside ``slim``.
    """
    source = slim.state_dict()
    out: dict[str, torch.Tensor] = {}
    slim_bns = {name for name, m in slim.named_modules() if isinstance(m, SlimBatchNorm2d)}
    for key, target in plain.state_dict().items():
        owner, _, leaf = key.rpartition(".")
        name = f"{owner}.bn.{index}.{leaf}" if owner in slim_bns else key
        if name not in source:
            raise ValueError(f"'{key}': no tensor '{name}' in the slimmable operator")
        value = source[name]
        if value.dim() != target.dim() or any(t > v for t, v in zip(target.shape, value.shape)):
            raise ValueError(f"'{key}': needs shape {tuple(target.shape)}, the supernet holds {tuple(value.shape)}")
        out[key] = value[tuple(slice(0, n) for n in target.shape)].clone() if value.dim() else value.clone()
    return out
