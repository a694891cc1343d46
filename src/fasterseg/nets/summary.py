"""Describing a derived network: parameters, multiply-accumulates, a structure table, a diagram."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from fasterseg.genotype import Genotype
from fasterseg.layers.names import OP_NAMES
from fasterseg.nets.network import FasterSegNet, count_parameters, plan_cells


@dataclass(frozen=True)
class NetworkStats:
    params_with_aux: int
    params: int
    macs: int
    size: tuple[int, int]


def count_macs(genotype: Genotype, size: tuple[int, int]) -> int:
    """Multiply-accumulates of one eval-mode forward at ``size`` (H, W), counted by PyTorch's
    own flop counter on the meta device, so no memory or time is spent on real tensors."""
    with torch.device("meta"):
        model = FasterSegNet(genotype, aux_heads=False).eval()
        x = torch.empty(1, 3, *size)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def network_stats(genotype: Genotype, size: tuple[int, int]) -> NetworkStats:
    with torch.device("meta"):
        model = FasterSegNet(genotype, aux_heads=True)
    return NetworkStats(
        params_with_aux=count_parameters(model, include_aux=True),
        params=count_parameters(model, include_aux=False),
        macs=count_macs(genotype, size),
        size=size,
    )


def structure_table(genotype: Genotype) -> str:
    """One row per computed cell: layer, the branches sharing it, op, scale, channels, stride."""
    rows = [("layer", "branches", "op", "scale", "C_in", "C_out", "stride")]
    ends = genotype.ends
    for specs in plan_cells(genotype):
        for s in specs:
            scale = 2 ** (genotype.branches[s.branches[0]].path[s.layer] + 3)
            names = ",".join(f"1/{2 ** (ends[b] + 3)}" for b in s.branches)
            rows.append((str(s.layer), names, s.op, f"1/{scale}", str(s.c_in), str(s.c_out), str(s.stride)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


_OP_STYLE = {
    "skip": ("X", "#9e9e9e"),
    "conv": ("o", "#1f77b4"),
    "conv_downup": ("D", "#2ca02c"),
    "conv_2x": ("s", "#d62728"),
    "conv_2x_downup": ("^", "#9467bd"),
}
_OTHER_STYLES = [("P", "#8c564b"), ("*", "#e377c2"), ("v", "#17becf"), ("h", "#bcbd22")]


def _op_style(op: str) -> tuple[str, str]:
    """Marker and colour of an operator; an operator added to the space later gets one of the
    spare styles (by its position in OP_NAMES), so the drawing needs no edit for it."""
    if op in _OP_STYLE:
        return _OP_STYLE[op]
    extra = [name for name in OP_NAMES if name not in _OP_STYLE]
    return _OTHER_STYLES[extra.index(op) % len(_OTHER_STYLES)] if op in extra else _OTHER_STYLES[0]


def plot_architecture(genotype: Genotype, out: str | Path) -> Path:
    """Layers x scales diagram in the spirit of the paper's figure 6: each branch's path, each
    cell's op (marker) and output channels (label), and where the branches fuse."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from fasterseg.utils.io import save_figure

    out = Path(out)
    n_layers = max(len(b.ops) for b in genotype.branches)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * n_layers + 3), 4.2))
    branch_colors = ["#ff7f0e", "#17becf", "#8c564b"]
    plan = plan_cells(genotype)
    for b, branch in enumerate(genotype.branches):
        color = branch_colors[b % len(branch_colors)]
        offset = (b - (len(genotype.branches) - 1) / 2) * 0.08
        xs = list(range(len(branch.path) + 1))
        ys = [p + offset for p in branch.path] + [branch.path[-1] + offset]
        ax.plot(xs, ys, "-", color=color, lw=2.5, alpha=0.8, label=f"branch to 1/{2 ** (branch.end + 3)}")
        ax.annotate("", xy=(len(branch.path) + 0.7, branch.end + offset), xytext=(len(branch.path), branch.end + offset),
                    arrowprops=dict(arrowstyle="->", color=color, lw=2))
    for specs in plan:
        for s in specs:
            br = genotype.branches[s.branches[0]]
            marker, mcolor = _op_style(s.op)
            y = br.path[s.layer]
            ax.scatter([s.layer + 0.5], [y + 0.5 * (s.stride == 2)], marker=marker, s=110, color=mcolor, zorder=3,
                       edgecolors="black", linewidths=0.6)
            ax.text(s.layer + 0.5, y + 0.5 * (s.stride == 2) - 0.2, str(s.c_out), ha="center", va="top", fontsize=7)
    fuse_x = n_layers + 1.1
    ax.text(fuse_x, 1.0, "fuse\n(arms, refines,\nFFM, head)", ha="left", va="center", fontsize=8,
            bbox=dict(boxstyle="round", fc="#f5f5f5", ec="#888888"))
    ax.set_yticks([0, 1, 2], ["1/8", "1/16", "1/32"])
    ax.set_ylim(2.6, -0.6)
    ax.set_xlim(-0.3, fuse_x + 2.0)
    ax.set_xlabel("cell (layer)")
    ax.set_ylabel("output stride")
    handles = [Line2D([], [], marker=_op_style(op)[0], color=_op_style(op)[1], ls="", markeredgecolor="black", label=op)
               for op in OP_NAMES]
    legend1 = ax.legend(handles=handles, loc="lower left", fontsize=7, title="op (label: C_out)", title_fontsize=7)
    ax.add_artist(legend1)
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title(f"FasterSeg network: F={genotype.base_channels}, stem width {genotype.stem_width:.3g}, "
                 f"head width {genotype.head_width:.3g}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out, dpi=130)
