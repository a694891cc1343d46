"""The FasterSeg supernet: every path, operator and width of the search space at once.

``layers`` x 3 scales of cells follow the stem (1/8). The cell at layer ``i`` and scale ``j``
(1/8, 1/16, 1/32 for ``j`` = 0, 1, 2; scale ``j`` exists from layer ``j`` on) holds a mixed
operator keeping its scale and, except at 1/32 and in the last layer, a stride-2 mixed operator
feeding scale ``j + 1``. Both are the softmax(alpha)-weighted sum of the five operators of
:data:`~fasterseg.layers.ops.PRIMITIVES`, built slimmable. A cell at 1/16 or 1/32 reads the
same-scale output of the previous layer ("keep") and the stride-2 output of the finer scale
("down"), weighted by softmax(beta); from the first layer a scale exists it can only come down.

Several architectures (the paper's teacher and student) share the cells; each has its own
architecture parameters, stem and fusion heads, because their stem/head widths differ. The
parameter layout is the official one, so :mod:`fasterseg.nets.derive` reads it directly:

- ``alpha_j``: (layers - j, ops) operator logits of the cells at scale ``j`` (both mixed
  operators of a cell share the row);
- ``beta_1``: (layers - 2, 2), ``beta_2``: (layers - 3, 2): logits of [from down, from keep]
  for the cells at scale ``j`` from layer ``j + 1`` on;
- ``ratio_0``, ``ratio_1``: (layers - 1, W), ``ratio_2``: (layers - 2, W): width logits of
  the features each layer but the last leaves at each scale (W = 1 without width search).

The five outputs are the official search network's: heads on the 1/8, 1/16 and 1/32 branch
ends (the coarser ones fused top-down into 1/8) and on the two concatenations 1/8 + 1/32 and
1/16 + 1/32. Their fusion modules fuse the last layer's features at every scale, whereas a
derived network fuses the features where its branch *left* each scale; so a derived network
takes only its stem and cells from the supernet (:meth:`Supernet.subnet_state_dict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fasterseg.genotype import Branch, Genotype
from fasterseg.nets.derive import ArchParams, derive_genotype
from fasterseg.nets.network import FasterSegNet, Head, init_weights, plan_cells
from fasterseg.layers.ops import OP_NAMES, PRIMITIVES, Conv2x, ConvNorm, build_op
from fasterseg.layers.rules import padding_for
from fasterseg.layers.slimmable import active_state, set_active_width
from fasterseg.layers.upsample import interpolate_aligned
from fasterseg.space.config import SupernetConfig

# Output order of :meth:`Supernet.forward` (the official valid_names).
OUTPUT_NAMES = ("8", "16", "32", "8_32", "16_32")
NUM_SCALES = 3
WidthMode = Literal["arch", "argmax", "max", "min", "random"]
WIDTH_MODES = ("arch", "argmax", "max", "min", "random")


def positions_per_scale(layers: int) -> tuple[int, int, int]:
    """Rows of ``ratio_0..2``: features each layer but the last leaves at each scale."""
    return (layers - 1, layers - 1, layers - 2)


def feature_row(scale: int, layer: int) -> int:
    """Row of ``ratio_<scale>`` for the feature that ``layer`` leaves at ``scale``."""
    return layer - max(0, scale - 1)


@dataclass
class WidthSample:
    """Width choice per feature position, laid out like the ratio parameters.

    ``score[s][row]`` multiplies the outputs of the cells writing and reading that feature:
    1.0 in value, but for a Gumbel sample it carries the straight-through gradient to the
    width logits (as in the official search).
    """

    index: tuple[list[int], list[int], list[int]]
    score: tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None] = (None, None, None)

    def get(self, scale: int, row: int) -> tuple[int, torch.Tensor | float]:
        s = self.score[scale]
        return self.index[scale][row], (1.0 if s is None else s[row])


class ArchParameters(nn.Module):
    """alphas, betas and width logits of one architecture, in the official shapes (init 1e-3)."""

    def __init__(self, layers: int, num_widths: int):
        super().__init__()
        n_ops = len(PRIMITIVES)
        for s in range(NUM_SCALES):
            setattr(self, f"alpha_{s}", nn.Parameter(torch.full((layers - s, n_ops), 1e-3)))
        self.beta_1 = nn.Parameter(torch.full((layers - 2, 2), 1e-3))
        self.beta_2 = nn.Parameter(torch.full((layers - 3, 2), 1e-3))
        for s, rows in enumerate(positions_per_scale(layers)):
            setattr(self, f"ratio_{s}", nn.Parameter(torch.full((rows, num_widths), 1e-3)))

    @property
    def alphas(self) -> list[torch.Tensor]:
        return [self.alpha_0, self.alpha_1, self.alpha_2]

    @property
    def betas(self) -> list[torch.Tensor | None]:
        return [None, self.beta_1, self.beta_2]

    @property
    def ratios(self) -> list[torch.Tensor]:
        return [self.ratio_0, self.ratio_1, self.ratio_2]

    def to_arch_params(self) -> ArchParams:
        """A detached copy in the form :mod:`fasterseg.nets.derive` reads."""
        return ArchParams(self.alphas, self.betas, self.ratios).clone()

    @torch.no_grad()
    def load_arch_params(self, arch: ArchParams) -> None:
        """Copy ``arch`` in (e.g. an official ``arch_*.pt``); shapes must match exactly."""
        pairs = [(f"alpha_{s}", arch.alphas[s]) for s in range(3)]
        pairs += [("beta_1", arch.betas[1]), ("beta_2", arch.betas[2])]
        pairs += [(f"ratio_{s}", arch.ratios[s]) for s in range(3)]
        for name, value in pairs:
            own = getattr(self, name)
            if value is None or tuple(value.shape) != tuple(own.shape):
                shape = None if value is None else tuple(value.shape)
                raise ValueError(f"'{name}': shape {shape} does not fit this supernet's {tuple(own.shape)}")
            own.copy_(value)


class MixedOp(nn.Module):
    """All five slimmable operators between the same two feature maps."""

    def __init__(self, c_in: int, c_out: int, stride: int, widths: Sequence[float]):
        super().__init__()
        self.ops = nn.ModuleList(build_op(name, c_in, c_out, stride, widths=widths) for name in OP_NAMES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, live: Sequence[bool],
                width: int, score: torch.Tensor | float) -> torch.Tensor:
        out = None
        for k, op in enumerate(self.ops):
            if not live[k]:  # an operator of weight exactly 0 adds nothing, not even gradient
                continue
            set_active_width(op, width)
            y = op(x) * weights[k]
            out = y if out is None else out + y
        if out is None:
            raise ValueError("every operator of a mixed op has weight 0")
        return out * score


class SuperCell(nn.Module):
    """The cell at one (layer, scale): ``op`` keeps the scale, ``down`` halves it."""

    def __init__(self, channels: int, down: bool, widths: Sequence[float]):
        super().__init__()
        self.op = MixedOp(channels, channels, 1, widths)
        self.down = MixedOp(channels, 2 * channels, 2, widths) if down else None


class SupernetFusion(nn.Module):
    """The official search network's fusion of the last layer's three features, and its heads."""

    def __init__(self, cfg: SupernetConfig, head_width: float):
        super().__init__()
        c8, c16, c32 = (cfg.num_filters(s, head_width) for s in (8, 16, 32))
        k = cfg.num_classes
        self.refine16 = nn.ModuleList([ConvNorm(c16, c8, 1, 1, 0), ConvNorm(2 * c8, c8, 3, 1, 1)])
        self.refine32 = nn.ModuleList([
            ConvNorm(c32, c16, 1, 1, 0), ConvNorm(2 * c16, c16, 3, 1, 1),
            ConvNorm(c16, c8, 1, 1, 0), ConvNorm(2 * c8, c8, 3, 1, 1),
        ])
        self.head8, self.head16, self.head32 = Head(c8, k), Head(c8, k), Head(c8, k)
        self.head8_32, self.head16_32 = Head(2 * c8, k), Head(2 * c8, k)

    def forward(self, f8: torch.Tensor, f16: torch.Tensor, f32: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out16 = _resize(self.refine16[0](f16), f8)
        out16 = self.refine16[1](torch.cat([out16, f8], dim=1))
        out32 = _resize(self.refine32[0](f32), f16)
        out32 = self.refine32[1](torch.cat([out32, f16], dim=1))
        out32 = _resize(self.refine32[2](out32), f8)
        out32 = self.refine32[3](torch.cat([out32, f8], dim=1))
        return (
            self.head8(f8), self.head16(out16), self.head32(out32),
            self.head8_32(torch.cat([f8, out32], dim=1)), self.head16_32(torch.cat([out16, out32], dim=1)),
        )


def gumbel_hard(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Straight-through Gumbel-softmax (tau 1, hard): one-hot forward, softmax gradient."""
    if generator is None:
        return F.gumbel_softmax(logits, tau=1.0, hard=True)
    gumbels = -torch.empty_like(logits).exponential_(generator=generator).log()
    soft = (logits + gumbels).softmax(dim=-1)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(dim=-1, keepdim=True), 1.0)
    return hard - soft.detach() + soft


def _resize(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return interpolate_aligned(x, like.shape[2:])


def _stem(cfg: SupernetConfig, width: float) -> nn.Sequential:
    """The derived network's stem (same module names, so weights copy one to one)."""
    nf = cfg.num_filters
    return nn.Sequential(
        ConvNorm(3, nf(2, width) * 2, 3, 2, 1),
        Conv2x(nf(2, width) * 2, nf(4, width) * 2, stride=2),
        Conv2x(nf(4, width) * 2, nf(8, width), stride=2),
    )


class Supernet(nn.Module):
    """The search network. ``forward(x, arch, widths)`` returns the five predictions.

    Train mode: logits at 1/8 of the (padded) input, as the search's losses use them.
    Eval mode: logits at the input size. Inputs of any size are zero-padded (bottom/right) to
    a multiple of 32 and the outputs cropped.
    """

    def __init__(self, cfg: SupernetConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.width_choices
        self.stems = nn.ModuleDict({a.name: _stem(cfg, a.stem_width) for a in cfg.archs})
        self.cells = nn.ModuleList()
        for i in range(cfg.layers):
            self.cells.append(nn.ModuleList(
                SuperCell(cfg.num_filters(8 * 2**j), down=(j < NUM_SCALES - 1 and i < cfg.layers - 1), widths=widths)
                for j in range(min(i, NUM_SCALES - 1) + 1)
            ))
        self.fusions = nn.ModuleDict({a.name: SupernetFusion(cfg, a.head_width) for a in cfg.archs})
        self.arch = nn.ModuleDict(
            {a.name: ArchParameters(cfg.layers, len(widths) if a.search_width else 1) for a in cfg.archs}
        )
        init_weights(self)

    # -- parameters ---------------------------------------------------------------------
    def weight_parameters(self) -> list[nn.Parameter]:
        """Everything the weight optimiser trains (all but the architecture parameters)."""
        return [p for name, p in self.named_parameters() if not name.startswith("arch.")]

    def arch_parameters(self, arch: str | None = None) -> list[nn.Parameter]:
        archs = [arch] if arch is not None else list(self.arch)
        return [p for a in archs for p in self.arch[a].parameters()]

    def width_index(self, width: float) -> int:
        for k, w in enumerate(self.cfg.width_choices):
            if math.isclose(w, width, rel_tol=0, abs_tol=1e-9):
                return k
        raise ValueError(f"width {width} is not one of the width choices {self.cfg.width_choices}")

    # -- widths -------------------------------------------------------------------------
    def sample_widths(self, arch: str, mode: WidthMode = "arch", generator: torch.Generator | None = None) -> WidthSample:
        """Widths for one forward pass.

        ``arch``: Gumbel-softmax (hard, straight-through) samples of the architecture's width
        logits, or full width when it does not search widths; ``argmax``: the most probable
        widths (what derivation picks); ``max``/``min``/``random``: the sandwich rule's passes.
        ``generator`` (CPU) draws the Gumbel noise or random widths instead of the global stream.
        """
        spec = self.cfg.arch(arch)
        rows = positions_per_scale(self.cfg.layers)
        n = len(self.cfg.width_choices)
        if mode in ("arch", "argmax") and not spec.search_width:
            mode = "max"
        if mode == "max":
            return WidthSample(tuple([n - 1] * r for r in rows))
        if mode == "min":
            return WidthSample(tuple([0] * r for r in rows))
        if mode == "random":
            return WidthSample(tuple(torch.randint(n, (r,), generator=generator).tolist() for r in rows))
        ratios = self.arch[arch].ratios
        if mode == "argmax":
            return WidthSample(tuple(r.detach().argmax(-1).tolist() for r in ratios))
        if mode == "arch":
            hard = [gumbel_hard(F.log_softmax(r, dim=-1), generator) for r in ratios]
            index = tuple(h.detach().argmax(-1).tolist() for h in hard)
            score = tuple(h.gather(-1, h.detach().argmax(-1, keepdim=True)).squeeze(-1) for h in hard)
            return WidthSample(index, score)
        raise ValueError(f"width mode must be one of {WIDTH_MODES}, got {mode!r}")

    def width_one_hots(self, arch: str, generator: torch.Generator | None = None) -> list[torch.Tensor] | None:
        """One straight-through Gumbel one-hot per position over the width choices of ``arch``
        (None when its widths are not searched): what the latency model weighs table entries by."""
        if not self.cfg.arch(arch).search_width:
            return None
        return [gumbel_hard(F.log_softmax(r, dim=-1), generator) for r in self.arch[arch].ratios]

    # -- forward ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, arch: str, widths: WidthMode | WidthSample = "arch") -> tuple[torch.Tensor, ...]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an image batch of shape (N, 3, H, W), got {tuple(x.shape)}")
        height, width = x.shape[2], x.shape[3]
        pad_h, pad_w = padding_for(height, width)  # as the derived networks; outputs are cropped back
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        preds = self.fusions[arch](*self.features(x, arch, widths))
        if self.training:
            h8, w8 = -(-height // 8), -(-width // 8)
            return tuple(p[..., :h8, :w8] for p in preds)
        return tuple(
            interpolate_aligned(p, (8 * p.shape[2], 8 * p.shape[3]))[..., :height, :width] for p in preds
        )

    def features(self, x: torch.Tensor, arch: str, widths: WidthMode | WidthSample = "arch") -> list[torch.Tensor]:
        """The last layer's outputs at 1/8, 1/16 and 1/32 (head width), before fusion."""
        spec = self.cfg.arch(arch)
        params = self.arch[arch]
        if not isinstance(widths, WidthSample):
            widths = self.sample_widths(arch, widths)
        alphas = [F.softmax(a, dim=-1) for a in params.alphas]
        betas = [None] + [F.softmax(b, dim=-1) for b in params.betas[1:]]
        # Which weights are exactly zero, read in one transfer: those terms are left out.
        flat = torch.cat([t.detach().flatten() for t in alphas + betas[1:]]).ne(0).cpu().tolist()
        live_alpha, live_beta, pos = [], [None], 0
        for a in alphas:
            live_alpha.append([flat[pos + r * a.shape[1]: pos + (r + 1) * a.shape[1]] for r in range(a.shape[0])])
            pos += a.numel()
        for b in betas[1:]:
            live_beta.append([flat[pos + 2 * r: pos + 2 * r + 2] for r in range(b.shape[0])])
            pos += b.numel()

        layers = self.cfg.layers
        head = self.width_index(spec.head_width)

        def feature_width(scale: int, layer: int) -> tuple[int, torch.Tensor | float]:
            if layer == layers - 1:
                return head, 1.0
            return widths.get(scale, feature_row(scale, layer))

        prev: list[tuple[torch.Tensor, torch.Tensor | None]] = [(self.stems[arch](x), None)]
        for i, cells in enumerate(self.cells):
            cur: list[tuple[torch.Tensor, torch.Tensor | None]] = []
            for j, cell in enumerate(cells):
                alpha, live = alphas[j][i - j], live_alpha[j][i - j]
                score_in = 1.0 if i == 0 else feature_width(j, i - 1)[1]
                w_out, s_out = feature_width(j, i)
                if j == 0:
                    inputs = [(1.0, prev[0][0])]
                elif i == j:
                    inputs = [(1.0, prev[j - 1][1])]
                else:
                    beta, live_b = betas[j][i - j - 1], live_beta[j][i - j - 1]
                    inputs = [(beta[k], src) for k, src in enumerate((prev[j - 1][1], prev[j][0])) if live_b[k]]
                out = sum(w * cell.op(src, alpha, live, w_out, score_in * s_out) for w, src in inputs)
                down = None
                if cell.down is not None:
                    w_down, s_down = feature_width(j + 1, i)
                    down = sum(w * cell.down(src, alpha, live, w_down, score_in * s_down) for w, src in inputs)
                cur.append((out, down))
            prev = cur
        return [out for out, _ in prev]

    # -- architectures ------------------------------------------------------------------
    def arch_params(self, arch: str) -> ArchParams:
        return self.arch[arch].to_arch_params()

    def active_path(self, arch: str, end: int) -> list[int]:
        """Scale index per layer of the path that output ``end`` reads under argmax betas."""
        betas = self.arch[arch].betas
        path, scale = [0] * self.cfg.layers, end
        for i in range(self.cfg.layers - 1, -1, -1):
            path[i] = scale
            if scale > 0 and (i == scale or int(betas[scale][i - scale - 1].argmax()) == 0):
                scale -= 1
        if path[0] != 0:
            raise ValueError(f"no path reaches scale {end}")
        return path

    def active_genotype(self, arch: str, end: int) -> Genotype:
        """The single branch that output ``end`` computes under argmax alphas, betas and widths.

        No skip is pruned and paths are read as the supernet reads its betas; this is the
        network a one-hot supernet is (see :meth:`genotype` for the paper's derivation).
        """
        spec = self.cfg.arch(arch)
        path = self.active_path(arch, end)
        alphas = self.arch[arch].alphas
        ops = tuple(OP_NAMES[int(alphas[path[i]][i - path[i]].argmax())] for i in range(self.cfg.layers))
        sample = self.sample_widths(arch, "argmax")
        widths = tuple(
            self.cfg.width_choices[sample.index[path[i]][feature_row(path[i], i - 1)]]
            for i in range(1, self.cfg.layers)
        )
        return Genotype(
            (Branch(end, ops, tuple(path), widths),), num_classes=self.cfg.num_classes,
            base_channels=self.cfg.base_channels, stem_width=spec.stem_width, head_width=spec.head_width,
        )

    def genotype(self, arch: str, ends: Sequence[int]) -> Genotype:
        """The network derived from ``arch``'s parameters (the official rules) with these ends."""
        if self.cfg.layers < 6:
            # The official 1/32 branch must keep round(layers / 3) + 4 cells.
            raise ValueError(f"derivation needs at least 6 layers, the supernet has {self.cfg.layers}")
        spec = self.cfg.arch(arch)
        return derive_genotype(
            self.arch_params(arch), ends, self.cfg.width_choices, spec.stem_width, spec.head_width,
            num_classes=self.cfg.num_classes, base_channels=self.cfg.base_channels, ignore_skip=spec.ignore_skip,
        )

    # -- handing out a derived network -------------------------------------------------
    def subnet_state_dict(self, genotype: Genotype, arch: str,
                          positions: Sequence[Sequence[int]] | None = None) -> dict[str, torch.Tensor]:
        """Stem and cell tensors of the derived network ``genotype``, cut from this supernet.

        ``positions[b][l]`` is the supernet layer of cell ``l`` of branch ``b``; by default cell
        ``l`` is layer ``l`` (branches as long as the supernet). Derivation drops pruned skips,
        so pass the kept layers for such genotypes. Keys are :class:`FasterSegNet`'s.
        """
        spec = self.cfg.arch(arch)
        g = genotype
        if g.base_channels != self.cfg.base_channels:
            raise ValueError(f"genotype has base_channels {g.base_channels}, the supernet {self.cfg.base_channels}")
        if not math.isclose(g.stem_width, spec.stem_width, abs_tol=1e-9):
            raise ValueError(f"genotype has stem_width {g.stem_width}, architecture {arch!r} has {spec.stem_width}")
        if positions is None:
            for b, br in enumerate(g.branches):
                if len(br.ops) != self.cfg.layers:
                    raise ValueError(
                        f"branch {b} has {len(br.ops)} cells, the supernet {self.cfg.layers} layers: pass positions"
                    )
            positions = [list(range(len(br.ops))) for br in g.branches]
        state = {f"stem.{k}": v.clone() for k, v in self.stems[arch].state_dict().items()}
        for specs in plan_cells(g):
            for s in specs:
                b = s.branches[0]
                br = g.branches[b]
                layer, scale = positions[b][s.layer], br.path[s.layer]
                if not (0 <= layer < self.cfg.layers) or scale >= len(self.cells[layer]):
                    raise ValueError(f"branch {b} cell {s.layer}: the supernet has no cell at layer {layer}, scale {scale}")
                cell = self.cells[layer][scale]
                mixed = cell.op if s.stride == 1 else cell.down
                if mixed is None:
                    raise ValueError(f"branch {b} cell {s.layer}: the supernet cell at layer {layer} cannot go down")
                last = s.layer == len(br.ops) - 1
                index = self.width_index(g.head_width if last else br.widths[s.layer])
                with torch.device("meta"):
                    plain = build_op(s.op, s.c_in, s.c_out, s.stride)
                slim = mixed.ops[OP_NAMES.index(s.op)]
                for key, value in active_state(slim, plain, index).items():
                    state[f"cells.{s.key}.{key}"] = value
        return state

    def subnet(self, genotype: Genotype, arch: str, positions: Sequence[Sequence[int]] | None = None) -> FasterSegNet:
        """A derived network with this supernet's stem and cell weights (fusion and heads new)."""
        net = FasterSegNet(genotype)
        init_weights(net)
        state = self.subnet_state_dict(genotype, arch, positions)
        missing, unexpected = net.load_state_dict(state, strict=False)
        stray = [k for k in missing if k.startswith(("stem.", "cells."))]
        if stray or unexpected:
            raise RuntimeError(f"weight hand-out mismatch: missing {stray}, unexpected {unexpected}")
        return net
