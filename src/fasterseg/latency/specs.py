"""Which op instances exist: in a derived network, and anywhere in the search space.

:func:`network_specs` lists, piece by piece, what :class:`fasterseg.nets.network.FasterSegNet`
computes in eval mode for one input size (stem, every computed cell once, the fusion of each
branch, the fusion conv and the 1/8 head; no auxiliary heads). :func:`space_specs` lists every
instance the search space can produce at one input size, which is what ``lut build`` measures.
Both count channels with the network's rules (:mod:`fasterseg.layers.rules`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from fasterseg.errors import GenotypeError
from fasterseg.genotype import Genotype
from fasterseg.latency.lut import OpSpec
from fasterseg.nets.network import plan_cells
from fasterseg.layers.names import OP_NAMES
from fasterseg.layers.rules import feature_channels, padded_size, reduction_fits
from fasterseg.space.config import SupernetConfig


def padded(size: tuple[int, int]) -> tuple[int, int]:
    """The size the network runs at for inputs of ``size`` (padded bottom/right to a multiple of
    32 and to the 64-pixel minimum, as :func:`fasterseg.layers.rules.padding_for` says); tables
    are for that size."""
    return padded_size(int(size[0]), int(size[1]))


def stem_specs(base_channels: int, stem_width: float, size: tuple[int, int]) -> list[OpSpec]:
    """The three stem layers: 3x3 conv s2, then two conv_2x s2, ending at 1/8."""
    def nf(s: int) -> int:
        return feature_channels(s, base_channels, stem_width)

    h, w = padded(size)
    return [
        OpSpec("stem_conv", h, w, 3, nf(2) * 2, 2),
        OpSpec("conv_2x", h // 2, w // 2, nf(2) * 2, nf(4) * 2, 2),
        OpSpec("conv_2x", h // 4, w // 4, nf(4) * 2, nf(8), 2),
    ]


def fusion_specs(base_channels: int, head_width: float, size: tuple[int, int], end: int,
                 c_in_16: int = 0, c_in_8: int = 0) -> list[OpSpec]:
    """The pieces fusing one branch into 1/8 features.

    ``c_in_16``/``c_in_8``: channels entering the cell where the branch leaves 1/16 / 1/8 (those
    features are concatenated into the refines), as in the network's ``_down_c_in``.
    """
    def nf(s: int) -> int:
        return feature_channels(s, base_channels, head_width)

    h, w = padded(size)
    if end == 2:
        return [
            OpSpec("arm", h // 32, w // 32, nf(32), nf(16), 1),
            OpSpec("refine", h // 16, w // 16, nf(16) + c_in_16, nf(16), 1),
            OpSpec("arm", h // 16, w // 16, nf(16), nf(8), 1),
            OpSpec("refine", h // 8, w // 8, nf(8) + c_in_8, nf(8), 1),
        ]
    if end == 1:
        return [
            OpSpec("arm", h // 16, w // 16, nf(16), nf(8), 1),
            OpSpec("refine", h // 8, w // 8, nf(8) + c_in_8, nf(8), 1),
        ]
    return []


def head_specs(base_channels: int, head_width: float, size: tuple[int, int], branches: int,
               num_classes: int) -> list[OpSpec]:
    """The fusion conv over the concatenated branches and the 1/8 head (with its x8 resize)."""
    h, w = padded(size)
    c = feature_channels(8, base_channels, head_width) * branches
    return [OpSpec("ffm", h // 8, w // 8, c, c, 1), OpSpec("head", h // 8, w // 8, c, num_classes, 1)]


@dataclass(frozen=True)
class NetworkPiece:
    """One computed piece of a derived network and where it sits (for breakdowns)."""

    part: str  # "stem", "cell", "fusion" or "head"
    spec: OpSpec
    label: str


def network_pieces(g: Genotype, size: tuple[int, int]) -> list[NetworkPiece]:
    """Everything the eval-mode network computes, once each (shared cells count once)."""
    if g.output_stride != 8:
        raise GenotypeError(f"output_stride {g.output_stride}: the latency tables cover the paper's 1/8 head only, not "
                            "the 1/4 refinement; time the network on its deploy path instead (fasterseg bench)")
    hp, wp = padded(size)
    pieces = [NetworkPiece("stem", s, f"stem[{i}]") for i, s in enumerate(stem_specs(g.base_channels, g.stem_width, size))]
    down_c_in: dict[tuple[int, int], int] = {}
    for specs in plan_cells(g):
        for c in specs:
            branch = g.branches[c.branches[0]]
            scale_index = branch.path[c.layer]
            stride = 2 ** (scale_index + 3)
            spec = OpSpec(c.op, hp // stride, wp // stride, c.c_in, c.c_out, c.stride)
            pieces.append(NetworkPiece("cell", spec, f"cell {c.key}"))
            if c.stride == 2:
                for b in c.branches:
                    down_c_in.setdefault((b, scale_index), c.c_in)
    for b, end in enumerate(g.ends):
        for s in fusion_specs(g.base_channels, g.head_width, size, end,
                              c_in_16=down_c_in.get((b, 1), 0), c_in_8=down_c_in.get((b, 0), 0)):
            pieces.append(NetworkPiece("fusion", s, f"fusion 1/{2 ** (end + 3)}"))
    for s in head_specs(g.base_channels, g.head_width, size, len(g.branches), g.num_classes):
        pieces.append(NetworkPiece("head", s, s.op))
    return pieces


def network_specs(g: Genotype, size: tuple[int, int]) -> list[OpSpec]:
    return [p.spec for p in network_pieces(g, size)]


def space_specs(space: SupernetConfig, size: tuple[int, int], max_branches: int = 3) -> list[OpSpec]:
    """Every op instance the search space can contain at input ``size``, sorted, no duplicates.

    Cells: each operator at each scale, stride 1 (and stride 2 where a finer scale feeds a
    coarser one), for every input width (the width choices and the stem widths) and every
    output width (the width choices and the head widths). A stride-1 ``skip`` between unequal
    widths is the supernet's 1x1 projection; derived networks only use the identity.
    Pieces: the stem and head of each architecture's (stem, head) widths, every fusion input
    width, and the fusion conv and head for 1 to ``max_branches`` branches.
    """
    hp, wp = padded(size)
    stems = sorted({p[0] for p in space.stem_head_widths()})
    heads = sorted({p[1] for p in space.stem_head_widths()})
    widths = sorted(set(space.width_choices))
    nf = space.num_filters
    specs: set[OpSpec] = set()
    for sw in stems:
        specs.update(stem_specs(space.base_channels, sw, size))
    for s in range(3):
        stride = 2 ** (s + 3)
        h, w = hp // stride, wp // stride
        in_widths = sorted(set(widths) | (set(stems) if s == 0 else set()))
        out_widths = sorted(set(widths) | set(heads))
        for op, wi, wo in product(OP_NAMES, in_widths, out_widths):
            specs.add(OpSpec(op, h, w, nf(stride, wi), nf(stride, wo), 1))
        if s < 2:
            for op, wi, wo in product(OP_NAMES, in_widths, widths):
                if op == "skip" and not reduction_fits(nf(stride * 2, wo)):
                    continue  # the factorized reduction needs an even width; no network has it
                specs.add(OpSpec(op, h, w, nf(stride, wi), nf(stride * 2, wo), 2))
    for hw in heads:
        c8_in = sorted({nf(8, v) for v in set(widths) | set(stems)})
        c16_in = sorted({nf(16, v) for v in widths})
        for c16, c8 in product(c16_in, c8_in):
            specs.update(fusion_specs(space.base_channels, hw, size, 2, c16, c8))
        for c8 in c8_in:
            specs.update(fusion_specs(space.base_channels, hw, size, 1, 0, c8))
        for n in range(1, max_branches + 1):
            specs.update(head_specs(space.base_channels, hw, size, n, space.num_classes))
    return sorted(specs)
