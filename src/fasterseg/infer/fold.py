"""Fold every BatchNorm into the convolution before it, for inference.

In eval mode a BatchNorm is a per-channel affine map, so ``bn(conv(x))`` equals one
convolution with rescaled weights and a bias. Folding removes a full pass over every feature
map; the folded network computes the same function up to float rounding.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from fasterseg.layers.ops import Skip

# (conv attribute, its BatchNorm attribute) pairs used by our ops, heads and fusion modules.
_PAIRS = (("conv", "bn"), ("conv1", "bn1"), ("conv2", "bn2"))


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, channels: slice = slice(None)) -> nn.Conv2d:
    """A new conv equal to ``bn(conv(x))`` restricted to BN ``channels`` (for split convs)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm that tracks no running statistics")
    mean = bn.running_mean[channels]
    scale = bn.weight[channels] / torch.sqrt(bn.running_var[channels] + bn.eps)
    shift = bn.bias[channels] - mean * scale
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    fused = fused.to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
        fused.bias.copy_(bias * scale + shift)
    return fused


def _fold_sequential(seq: nn.Sequential) -> None:
    names = list(seq._modules)
    for a, b in zip(names, names[1:]):
        conv, bn = seq._modules[a], seq._modules[b]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            seq._modules[a] = fold_conv_bn(conv, bn)
            seq._modules[b] = nn.Identity()


def _fold_skip(skip: Skip) -> None:
    """The strided skip concatenates two convs before one BN: fold each half separately."""
    if skip.stride == 1:
        return
    half = skip.conv1.out_channels
    skip.conv1 = fold_conv_bn(skip.conv1, skip.bn, slice(0, half))
    skip.conv2 = fold_conv_bn(skip.conv2, skip.bn, slice(half, 2 * half))
    skip.bn = nn.Identity()


def fold_batchnorm(model: nn.Module, strict: bool = True) -> nn.Module:
    """A copy of ``model`` (eval mode) with every BatchNorm folded; raises if one is left over
    (with ``strict=False`` it stays: a BatchNorm before its conv, as in pre-activation networks,
    cannot be folded into it, and ONNX runtimes apply it as the affine map it is)."""
    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        if isinstance(module, Skip):
            _fold_skip(module)
        elif isinstance(module, nn.Sequential):
            _fold_sequential(module)
        else:
            for conv_name, bn_name in _PAIRS:
                conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    setattr(module, conv_name, fold_conv_bn(conv, bn))
                    setattr(module, bn_name, nn.Identity())
    left = [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left and strict:
        raise ValueError(f"BatchNorm layers not preceded by a foldable conv: {left[:5]}")
    return model


def fold_for_deploy(model: nn.Module) -> nn.Module:
    """``fold_batchnorm`` as the deploy paths use it: strict for FasterSeg networks (every
    BatchNorm follows a convolution, so one left over is a bug), not for registered networks
    whose pre-activation BatchNorms (DDRNet's) precede their convolutions."""
    return fold_batchnorm(model, strict=getattr(model, "genotype", None) is not None)
