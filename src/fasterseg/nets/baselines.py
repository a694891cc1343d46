"""Two hand-designed real-time segmentation networks, written from their papers, registered
beside FasterSeg's genotypes so that the same trainer, model files and deploy paths serve them
(``fasterseg train --network ddrnet23_slim``), to compare searched students with on equal terms
(same data, recipe and CPU budget; no pretrained weights, as FasterSeg uses none).

- BiSeNetV2 (Yu et al., "BiSeNet V2: Bilateral Network with Guided Aggregation for Real-time
  Semantic Segmentation", IJCV 2021): a wide, shallow detail branch at 1/8, a narrow, deep
  semantic branch down to 1/32 (stem, gather-and-expand layers, context embedding), merged by
  bilateral guided aggregation; auxiliary "booster" heads on the semantic stages in training.
- DDRNet-23-slim (Hong et al., "Deep Dual-resolution Networks for Real-time and Accurate
  Semantic Segmentation of Road Scenes", 2021): residual stages to 1/8, then a high-resolution
  branch kept at 1/8 and a low-resolution branch down to 1/64, exchanging features twice
  (bilateral fusion), with a deep aggregation pyramid pooling module on the low branch.

Inside, each resizes as its paper does (corners not aligned); their 1/8 class scores become
scores at the input size as FasterSeg's do (padded to the stride, corners aligned, cropped), so
every deploy path's label maps (``infer.heads``) reproduce their ``forward``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fasterseg.layers.rules import padding_for
from fasterseg.layers.upsample import interpolate_aligned, upsample_aligned


def conv_bn(c_in: int, c_out: int, k: int = 3, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """The papers' resize inside the networks (corners not aligned)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class SegHead(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv1x1 to class scores."""

    def __init__(self, c_in: int, c_mid: int, num_classes: int):
        super().__init__()
        self.body = conv_bn(c_in, c_mid, 3)
        self.out = nn.Conv2d(c_mid, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


class EighthScoresNet(nn.Module):
    """A network whose main scores come out at 1/8: ``_scores8(x)`` gives them with what its
    auxiliary head reads, ``_auxiliary(that)`` the auxiliary scores. Here, once, the contract
    every registered network keeps (as ``FasterSegNet``): ``forward`` gives the scores at the
    input size in eval mode and ``(main, auxiliary or None, None)`` in training; ``logits8`` the
    1/8 scores of the padded input (what deploy paths time as model-only); ``num_classes``,
    ``aux_heads``, ``aux_prefixes`` (the state-dict keys a shipped file leaves out) and
    ``classifier_prefixes`` (the tensors with a row per class, which fine-tuning maps by name)."""

    aux_prefixes: tuple[str, ...] = ()
    classifier_prefixes: tuple[str, ...] = ()
    genotype = None  # not a FasterSeg genotype network

    def __init__(self, num_classes: int, aux_heads: bool):
        super().__init__()
        self.num_classes = num_classes
        self.aux_heads = aux_heads
        self.meta = None  # ModelMeta when loaded from a model file

    def _scores8(self, x: torch.Tensor):
        raise NotImplementedError

    def _auxiliary(self, features) -> torch.Tensor:
        raise NotImplementedError

    def logits8(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = padding_for(x.shape[2], x.shape[3])
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self._scores8(x)[0]

    def forward(self, x: torch.Tensor):
        height, width = x.shape[2], x.shape[3]
        pad_h, pad_w = padding_for(height, width)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        out, features = self._scores8(x)
        if not self.training:
            return interpolate_aligned(out, (out.shape[2] * 8, out.shape[3] * 8))[..., :height, :width]
        crop = (height, width)
        aux = upsample_aligned(self._auxiliary(features), 8, crop) if self.aux_heads else None
        return upsample_aligned(out, 8, crop), aux, None


# ----------------------------------------------------------------------------- BiSeNetV2
class StemBlock(nn.Module):
    """3 -> 16 channels at 1/4: a strided conv, then a strided conv path beside a max-pool, fused."""

    def __init__(self, c_out: int = 16):
        super().__init__()
        self.first = conv_bn(3, c_out, 3, 2)
        self.conv_path = nn.Sequential(conv_bn(c_out, c_out // 2, 1), conv_bn(c_out // 2, c_out, 3, 2))
        self.pool_path = nn.MaxPool2d(3, 2, 1)
        self.fuse = conv_bn(2 * c_out, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        return self.fuse(torch.cat([self.conv_path(x), self.pool_path(x)], 1))


class GatherExpand(nn.Module):
    """Gather-and-expand layer: 3x3 conv, depthwise expansion by 6 (two depthwise convs when
    striding), 1x1 projection, residual (a depthwise + 1x1 shortcut when striding)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, expand: int = 6):
        super().__init__()
        mid = c_in * expand
        self.gather = conv_bn(c_in, c_in, 3)
        if stride == 1:
            self.expand = conv_bn(c_in, mid, 3, 1, groups=c_in, relu=False)
            self.shortcut = None
        else:
            self.expand = nn.Sequential(conv_bn(c_in, mid, 3, 2, groups=c_in, relu=False),
                                        conv_bn(mid, mid, 3, 1, groups=mid, relu=False))
            self.shortcut = nn.Sequential(conv_bn(c_in, c_in, 3, 2, groups=c_in, relu=False),
                                          conv_bn(c_in, c_out, 1, relu=False))
        self.project = conv_bn(mid, c_out, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.expand(self.gather(x)))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ContextEmbedding(nn.Module):
    """Global average pooling, BN, 1x1 conv, added back to every position, then a 3x3 conv."""

    def __init__(self, c: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.squeeze = conv_bn(c, c, 1)
        self.out = conv_bn(c, c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.squeeze(self.bn(x.mean((2, 3), keepdim=True)))
        return self.out(x + g)


class GuidedAggregation(nn.Module):
    """Bilateral guided aggregation: each branch gates the other at its own resolution."""

    def __init__(self, c: int = 128):
        super().__init__()
        self.detail_keep = nn.Sequential(conv_bn(c, c, 3, groups=c, relu=False), nn.Conv2d(c, c, 1, bias=False))
        self.detail_down = nn.Sequential(conv_bn(c, c, 3, 2, relu=False), nn.AvgPool2d(3, 2, 1))
        self.semantic_up = conv_bn(c, c, 3, relu=False)
        self.semantic_keep = nn.Sequential(conv_bn(c, c, 3, groups=c, relu=False), nn.Conv2d(c, c, 1, bias=False))
        self.out = conv_bn(c, c, 3)

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        size = detail.shape[2:]
        high = self.detail_keep(detail) * torch.sigmoid(resize(self.semantic_up(semantic), size))
        low = self.detail_down(detail) * torch.sigmoid(self.semantic_keep(semantic))
        return self.out(high + resize(low, size))


class BiSeNetV2(EighthScoresNet):
    """BiSeNetV2 with the paper's widths (detail 64-64-128; semantic 16-32-64-128, expansion 6)."""

    aux_prefixes = ("aux.",)
    classifier_prefixes = ("head.out.", *(f"aux.{i}.out." for i in range(4)))

    def __init__(self, num_classes: int, aux_heads: bool = True, head_channels: int = 1024):
        super().__init__(num_classes, aux_heads)
        self.detail = nn.Sequential(
            conv_bn(3, 64, 3, 2), conv_bn(64, 64),
            conv_bn(64, 64, 3, 2), conv_bn(64, 64), conv_bn(64, 64),
            conv_bn(64, 128, 3, 2), conv_bn(128, 128), conv_bn(128, 128),
        )
        self.stem = StemBlock(16)
        self.stage3 = nn.Sequential(GatherExpand(16, 32, 2), GatherExpand(32, 32))
        self.stage4 = nn.Sequential(GatherExpand(32, 64, 2), GatherExpand(64, 64))
        self.stage5 = nn.Sequential(GatherExpand(64, 128, 2), *[GatherExpand(128, 128) for _ in range(3)])
        self.context = ContextEmbedding(128)
        self.aggregate = GuidedAggregation(128)
        self.head = SegHead(128, head_channels, num_classes)
        if aux_heads:  # the four boosters, training only
            self.aux = nn.ModuleList([SegHead(c, 128, num_classes) for c in (16, 32, 64, 128)])

    def _scores8(self, x: torch.Tensor):
        detail = self.detail(x)
        s2 = self.stem(x)
        s3 = self.stage3(s2)
        s4 = self.stage4(s3)
        s5 = self.stage5(s4)
        return self.head(self.aggregate(detail, self.context(s5))), (s2, s3, s4, s5)

    def _auxiliary(self, stages) -> torch.Tensor:
        """The four boosters, averaged: together they carry the one auxiliary weight."""
        eighth = stages[1].shape[2:]
        return sum(resize(head(f), eighth) for head, f in zip(self.aux, stages)) / len(self.aux)


# ----------------------------------------------------------------------------- DDRNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1, last_relu: bool = True):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c_in, c_out, 3, stride), conv_bn(c_out, c_out, 3, relu=False))
        self.shortcut = conv_bn(c_in, c_out, 1, stride, relu=False) if stride != 1 or c_in != c_out else nn.Identity()
        self.last_relu = last_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x) + self.shortcut(x)
        return F.relu(y) if self.last_relu else y


class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, c_in: int, planes: int, stride: int = 1):
        super().__init__()
        c_out = planes * self.expansion
        self.body = nn.Sequential(conv_bn(c_in, planes, 1), conv_bn(planes, planes, 3, stride), conv_bn(planes, c_out, 1, relu=False))
        self.shortcut = conv_bn(c_in, c_out, 1, stride, relu=False) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


def basic_stage(c_in: int, c_out: int, blocks: int, stride: int = 1, last_relu: bool = True) -> nn.Sequential:
    layers = [BasicBlock(c_in, c_out, stride)]
    layers += [BasicBlock(c_out, c_out, 1, last_relu=last_relu or i < blocks - 2) for i in range(blocks - 1)]
    return nn.Sequential(*layers)


def bn_relu_conv(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(inplace=True), nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False))


def ddr_head(c_in: int, planes: int, num_classes: int) -> nn.Sequential:
    """DDRNet's segmentation head: BN-ReLU-conv3x3, BN-ReLU, conv1x1 to class scores."""
    return nn.Sequential(bn_relu_conv(c_in, planes, 3), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
                         nn.Conv2d(planes, num_classes, 1))


class DAPPM(nn.Module):
    """Deep aggregation pyramid pooling: pooled contexts at four scales plus the global one, each
    added to the one below it before its 3x3 conv, concatenated, compressed, plus a shortcut."""

    def __init__(self, c_in: int, c_mid: int, c_out: int):
        super().__init__()
        self.scales = nn.ModuleList([
            bn_relu_conv(c_in, c_mid, 1),
            nn.Sequential(nn.AvgPool2d(5, 2, 2), bn_relu_conv(c_in, c_mid, 1)),
            nn.Sequential(nn.AvgPool2d(9, 4, 4), bn_relu_conv(c_in, c_mid, 1)),
            nn.Sequential(nn.AvgPool2d(17, 8, 8), bn_relu_conv(c_in, c_mid, 1)),
            nn.Sequential(nn.AdaptiveAvgPool2d(1), bn_relu_conv(c_in, c_mid, 1)),
        ])
        self.process = nn.ModuleList([bn_relu_conv(c_mid, c_mid, 3) for _ in range(4)])
        self.compress = bn_relu_conv(5 * c_mid, c_out, 1)
        self.shortcut = bn_relu_conv(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        outs = [self.scales[0](x)]
        for scale, process in zip(self.scales[1:], self.process):
            outs.append(process(resize(scale(x), size) + outs[-1]))
        return self.compress(torch.cat(outs, 1)) + self.shortcut(x)


class DDRNet23Slim(EighthScoresNet):
    """DDRNet-23-slim: planes 32, pyramid 128, head 64."""

    aux_prefixes = ("aux_head.",)
    classifier_prefixes = ("head.3.", "aux_head.3.")

    def __init__(self, num_classes: int, aux_heads: bool = True, planes: int = 32, spp_planes: int = 128,
                 head_planes: int = 64):
        super().__init__(num_classes, aux_heads)
        p = planes
        self.stem = nn.Sequential(conv_bn(3, p, 3, 2), conv_bn(p, p, 3, 2))
        self.layer1 = basic_stage(p, p, 2)
        self.layer2 = basic_stage(p, 2 * p, 2, stride=2)
        self.low3 = basic_stage(2 * p, 4 * p, 2, stride=2, last_relu=False)
        self.high3 = basic_stage(2 * p, 2 * p, 2, last_relu=False)
        self.down3 = conv_bn(2 * p, 4 * p, 3, 2, relu=False)
        self.compress3 = conv_bn(4 * p, 2 * p, 1, relu=False)
        self.low4 = basic_stage(4 * p, 8 * p, 2, stride=2, last_relu=False)
        self.high4 = basic_stage(2 * p, 2 * p, 2, last_relu=False)
        self.down4 = nn.Sequential(conv_bn(2 * p, 4 * p, 3, 2), conv_bn(4 * p, 8 * p, 3, 2, relu=False))
        self.compress4 = conv_bn(8 * p, 2 * p, 1, relu=False)
        self.high5 = Bottleneck(2 * p, 2 * p)
        self.low5 = Bottleneck(8 * p, 8 * p, stride=2)
        self.spp = DAPPM(16 * p, spp_planes, 4 * p)
        self.head = ddr_head(4 * p, head_planes, num_classes)
        if aux_heads:  # training only
            self.aux_head = ddr_head(2 * p, head_planes, num_classes)

    def _auxiliary(self, high: torch.Tensor) -> torch.Tensor:
        return self.aux_head(high)

    def _scores8(self, x: torch.Tensor):
        x = self.layer2(self.layer1(self.stem(x)))  # 1/8
        eighth = x.shape[2:]
        low = self.low3(F.relu(x))
        high = self.high3(F.relu(x))
        low, high = low + self.down3(F.relu(high)), high + resize(self.compress3(F.relu(low)), eighth)
        low = self.low4(F.relu(low))
        high = self.high4(F.relu(high))
        low, high = low + self.down4(F.relu(high)), high + resize(self.compress4(F.relu(low)), eighth)
        aux_input = high
        high = self.high5(F.relu(high))
        low = resize(self.spp(self.low5(F.relu(low))), eighth)
        return self.head(high + low), aux_input
