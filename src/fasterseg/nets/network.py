"""The derived FasterSeg network, built from a :class:`~fasterseg.genotype.Genotype`.

It computes what the official ``Network_Multi_Path_Infer`` computes: a three-conv stem to 1/8,
per-branch cells (a prefix that several branches have in common is computed once), top-down
fusion of the 1/32 branch with the 1/16 or 1/8 branch, a fusion conv and the 1/8 head, plus the
two auxiliary heads (1/16, 1/32) used for training. Unlike the official network it accepts any
input size: inputs are zero-padded (bottom/right) to a multiple of 32 and outputs are cropped.
A genotype with ``output_stride: 4`` (not the paper's) refines the 1/8 scores at 1/4 with the
stem's 1/4 features (:class:`QuarterRefine`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fasterseg.genotype import Genotype
from fasterseg.layers.input_norm import standardise_per_image
from fasterseg.layers.ops import ConvNorm, Conv2x, build_op

from fasterseg.layers.rules import padding_for
from fasterseg.layers.upsample import interpolate_aligned, upsample_aligned


class ConvBnRelu(nn.Module):
    """conv (no bias) -> BN -> ReLU with separate ``conv``/``bn`` names (heads and fusion)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, 1, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Head(nn.Module):
    """3x3 conv-BN-ReLU (halving channels above 256) then a 1x1 classifier with bias."""

    def __init__(self, c_in: int, num_classes: int):
        super().__init__()
        mid = c_in if c_in <= 256 else c_in // 2
        self.conv_3x3 = ConvBnRelu(c_in, mid, 3)
        self.conv_1x1 = nn.Conv2d(mid, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_1x1(self.conv_3x3(x))


class FeatureFusion(nn.Module):
    """1x1 conv-BN-ReLU over the concatenated 1/8 features of all branches.

    (The official module also builds a channel-attention block it never calls; we omit it.)
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv_1x1 = ConvBnRelu(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_1x1(x)


class QuarterRefine(nn.Module):
    """Class scores at 1/4: the 1/8 scores upsampled, plus a correction computed from them and
    the stem's 1/4 features, as hand-designed real-time networks sharpen their thin objects.

    Why: at 360x480 a 1/8 output caps CamVid's mIoU by itself (a perfect 1/8 score map scores 84.8,
    pole 27; at 1/4 92.6, pole 60). The correction's classifier starts at zero (``reset``), so an
    untrained refinement outputs the 1/8 scores resized to 1/4 and training starts where the
    paper's network does (to the difference of resizing in two steps instead of one).
    """

    def __init__(self, c_quarter: int, channels: int, num_classes: int):
        super().__init__()
        self.reduce = ConvBnRelu(c_quarter, channels, 1)
        self.fuse = ConvBnRelu(num_classes + channels, channels, 3)
        self.classify = nn.Conv2d(channels, num_classes, 1)
        self.reset()

    def reset(self) -> None:
        nn.init.zeros_(self.classify.weight)
        nn.init.zeros_(self.classify.bias)

    def forward(self, scores8: torch.Tensor, quarter: torch.Tensor) -> torch.Tensor:
        up = _resize(scores8, quarter.shape[2:])
        return up + self.classify(self.fuse(torch.cat([up, self.reduce(quarter)], dim=1)))


@dataclass(frozen=True)
class CellSpec:
    """One computed cell: which branches share it, what it is, and its channel counts."""

    layer: int
    branches: tuple[int, ...]
    op: str
    c_in: int
    c_out: int
    stride: int

    @property
    def key(self) -> str:
        return f"{self.layer}-{self.branches[0]}"


def plan_cells(g: Genotype) -> list[list[CellSpec]]:
    """Group the branches' cells layer by layer.

    Branches share cell ``l`` when they shared every earlier cell and agree on its op, its
    output scale and its width; a branch's last cell (which maps to the head width) is never
    shared. This is the official grouping rule, so parameter counts and weights match.
    """
    branches = g.branches
    n = len(branches)
    connected = [[True] * n for _ in range(n)]
    layers: list[list[CellSpec]] = []
    for l in range(max(len(b.ops) for b in branches)):
        for i in range(n):
            for j in range(i + 1, n):
                bi, bj = branches[i], branches[j]
                same = (
                    len(bi.path) > l + 1
                    and len(bj.path) > l + 1
                    and bi.path[l + 1] == bj.path[l + 1]
                    and bi.ops[l] == bj.ops[l]
                    and bi.widths[l] == bj.widths[l]
                )
                if not same:
                    connected[i][j] = connected[j][i] = False
        groups: list[list[int]] = []
        for b in range(n):
            if len(branches[b].ops) <= l:
                continue
            for group in groups:
                if connected[group[0]][b]:
                    group.append(b)
                    break
            else:
                groups.append([b])
        specs = []
        for group in groups:
            br = branches[group[0]]
            scale = 2 ** (br.path[l] + 3)
            down = br.downs[l]
            last = l == len(br.ops) - 1
            c_in = g.num_filters(scale, g.stem_width if l == 0 else br.widths[l - 1])
            c_out = g.num_filters(scale, g.head_width) if last else g.num_filters(scale * (down + 1), br.widths[l])
            specs.append(CellSpec(l, tuple(group), br.ops[l], c_in, c_out, 2 if down else 1))
        layers.append(specs)
    return layers


def _resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    return interpolate_aligned(x, size)


class FasterSegNet(nn.Module):
    """A derived FasterSeg network.

    Eval mode: ``forward(x)`` returns logits ``(N, classes, H, W)`` at the input size.
    Train mode: returns ``(pred8, pred16, pred32)`` at the input size; the auxiliary
    predictions are ``None`` where the genotype has no such branch or ``aux_heads`` is False.
    """

    aux_prefixes = ("heads16.", "heads32.")  # the training-only heads a shipped file leaves out

    def __init__(self, genotype: Genotype, aux_heads: bool = True):
        super().__init__()
        g = genotype
        self.genotype = g
        self.num_classes = g.num_classes
        self.meta = None  # ModelMeta when loaded from a model file
        nf = g.num_filters
        sw, hw = g.stem_width, g.head_width
        self.stem = nn.Sequential(
            ConvNorm(3, nf(2, sw) * 2, 3, 2, 1),
            Conv2x(nf(2, sw) * 2, nf(4, sw) * 2, stride=2),
            Conv2x(nf(4, sw) * 2, nf(8, sw), stride=2),
        )
        self.plan = plan_cells(g)
        self.cells = nn.ModuleDict()
        for specs in self.plan:
            for s in specs:
                self.cells[s.key] = build_op(s.op, s.c_in, s.c_out, s.stride)

        ends = g.ends
        n = len(ends)
        ch_16 = self._down_c_in(ends, 2, 1)
        ch_8_2 = self._down_c_in(ends, 2, 0)
        ch_8_1 = self._down_c_in(ends, 1, 0)
        if 2 in ends:
            self.arms32 = nn.ModuleList([ConvNorm(nf(32, hw), nf(16, hw), 1, 1, 0), ConvNorm(nf(16, hw), nf(8, hw), 1, 1, 0)])
            self.refines32 = nn.ModuleList(
                [ConvNorm(nf(16, hw) + ch_16, nf(16, hw), 3, 1, 1), ConvNorm(nf(8, hw) + ch_8_2, nf(8, hw), 3, 1, 1)]
            )
        if 1 in ends:
            self.arms16 = ConvNorm(nf(16, hw), nf(8, hw), 1, 1, 0)
            self.refines16 = ConvNorm(nf(8, hw) + ch_8_1, nf(8, hw), 3, 1, 1)
        self.ffm = FeatureFusion(nf(8, hw) * n)
        self.heads8 = Head(nf(8, hw) * n, g.num_classes)
        # The stem's second conv gives the 1/4 features; the refinement is as wide as a 1/4 map at head width
        self.refine4 = QuarterRefine(nf(4, sw) * 2, nf(4, hw), g.num_classes) if g.output_stride == 4 else None
        self.aux_heads = aux_heads
        if aux_heads:
            # The 1/16 head sees, in branch order, the 1/16 features of the 1/32 branch (before
            # it went down) and the output of the 1/16 branch.
            c16 = sum(ch_16 if end == 2 else nf(16, hw) for end in ends if end in (1, 2))
            if 2 in ends:
                self.heads32 = Head(nf(32, hw), g.num_classes)
            if c16:
                self.heads16 = Head(c16, g.num_classes)

    def _down_c_in(self, ends: tuple[int, ...], end: int, scale_index: int) -> int:
        """C_in of the cell where branch ``end`` leaves scale ``scale_index`` (0 if none)."""
        if end not in ends:
            return 0
        b = ends.index(end)
        for specs in self.plan:
            for s in specs:
                if b in s.branches and s.stride == 2 and self.genotype.branches[b].path[s.layer] == scale_index:
                    return s.c_in
        return 0

    def forward(self, x: torch.Tensor):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an image batch of shape (N, 3, H, W), got {tuple(x.shape)}")
        height, width = x.shape[2], x.shape[3]
        pad_h, pad_w = padding_for(height, width)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        out = self._scores(x)
        stride = self.genotype.output_stride
        if self.training:
            pred8, pred16, pred32 = out
            crop = (height, width)
            return (self.upsample_scores(pred8, stride, crop),
                    None if pred16 is None else self.upsample_scores(pred16, 16, crop),
                    None if pred32 is None else self.upsample_scores(pred32, 32, crop))
        logits = _resize(out, (out.shape[2] * stride, out.shape[3] * stride))
        return logits[..., :height, :width]

    @staticmethod
    def upsample_scores(scores: torch.Tensor, scale: int, crop: tuple[int, int]) -> torch.Tensor:
        """A head's training output: its scores upsampled ``scale`` times (bilinear, corners
        aligned, float32) and cropped to the input size. Matrix products rather than
        ``F.interpolate``: the same values, a faster backward on CPUs (see ``upsample_aligned``)."""
        return upsample_aligned(scores, scale, crop)

    def logits8(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode class scores at the output stride (1/8, or 1/4 with ``output_stride: 4``) of
        the padded input, before the final upsample.

        This is the network proper; deploy paths time and export it separately from the
        upsample-and-argmax that turns it into a label map (which reads the stride from its shape).
        """
        pad_h, pad_w = padding_for(x.shape[2], x.shape[3])
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self._scores(x)

    def _scores(self, x: torch.Tensor):
        """The fused class scores (eval) or the three heads' (train), refined at 1/4 where the
        genotype says so."""
        quarter, feats = self._features(x)
        out = self._fuse(feats)
        if self.refine4 is None:
            return out
        if self.training:
            return (self.refine4(out[0], quarter), *out[1:])
        return self.refine4(out, quarter)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[dict[int, torch.Tensor]]]:
        """The stem's 1/4 features, and per branch the latest feature map at each scale index
        (0: 1/8, 1: 1/16, 2: 1/32)."""
        if self.genotype.input_norm == "image":
            # On the padded input: every path (eager, the deploy heads that pad to the stride first,
            # exported graphs whose caller pads small images) reaches this point with the same tensor
            x = standardise_per_image(x)
        quarter = self.stem[1](self.stem[0](x))
        stem = self.stem[2](quarter)
        n = len(self.genotype.branches)
        current = [stem] * n
        at_scale: list[dict[int, torch.Tensor]] = [{0: stem} for _ in range(n)]
        for specs in self.plan:
            for s in specs:
                out = self.cells[s.key](current[s.branches[0]])
                for b in s.branches:
                    current[b] = out
                    path = self.genotype.branches[b].path
                    scale = path[s.layer] + (1 if s.stride == 2 else 0)
                    at_scale[b][scale] = out
        return quarter, at_scale

    def _fuse(self, feats: list[dict[int, torch.Tensor]]):
        pred8, pred16, pred32 = [], [], []
        train_aux = self.training and self.aux_heads
        for b, end in enumerate(self.genotype.ends):
            f8 = feats[b][0]
            if end == 2:
                f16, f32 = feats[b][1], feats[b][2]
                if train_aux:
                    pred32.append(f32)
                    pred16.append(f16)
                out = _resize(self.arms32[0](f32), f16.shape[2:])
                out = self.refines32[0](torch.cat([out, f16], dim=1))
                out = _resize(self.arms32[1](out), f8.shape[2:])
                pred8.append(self.refines32[1](torch.cat([out, f8], dim=1)))
            elif end == 1:
                f16 = feats[b][1]
                if train_aux:
                    pred16.append(f16)
                out = _resize(self.arms16(f16), f8.shape[2:])
                pred8.append(self.refines16(torch.cat([out, f8], dim=1)))
            else:
                pred8.append(f8)
        logits8 = self.heads8(self.ffm(torch.cat(pred8, dim=1)))
        if not self.training:
            return logits8
        logits16 = self.heads16(torch.cat(pred16, dim=1)) if pred16 else None
        logits32 = self.heads32(torch.cat(pred32, dim=1)) if pred32 else None
        return logits8, logits16, logits32


def init_weights(model: nn.Module) -> None:
    """The official initialisation: Kaiming-normal (fan_in, ReLU) convs, unit BN, zero bias."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-5
            m.momentum = 0.1
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, QuarterRefine):
            m.reset()  # starts as the 1/8 scores resized to 1/4


def count_parameters(model: nn.Module, include_aux: bool = True) -> int:
    """Trainable parameters; ``include_aux=False`` leaves out the auxiliary (1/16, 1/32) heads."""
    total = 0
    for name, p in model.named_parameters():
        if not include_aux and name.startswith(tuple(getattr(model, "aux_prefixes", ()))):
            continue
        total += p.numel()
    return total
