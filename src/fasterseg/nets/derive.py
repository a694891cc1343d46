"""Architecture parameters (alphas, betas, width ratios) -> Genotype, by the official rules.

The search ends with one set of architecture parameters per network (teacher, student). For
each possible branch end (1/8, 1/16, 1/32) we pick the most probable down-sampling path, then
per cell the argmax operator and width, pruning skips so that a branch keeps a minimum depth
and never has a down-sampling segment made only of skips. Finally the 1/32 branch is paired
with the 1/8 or the 1/16 branch, whichever scores higher on mIoU * (latency / target) ^ -0.07.

Faithfulness note: the official code derives the three ends one after another on the *same*
parameter lists, mutating them (betas are soft-maxed again on every call; skips it rejected
stay rejected for later ends). The released architectures depend on this, so we reproduce it
explicitly in :func:`derive_branches` rather than by accident.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from fasterseg.genotype import Branch, Genotype
from fasterseg.layers.ops import OP_NAMES

SKIP = OP_NAMES.index("skip")
# Settings of the paper's objective mIoU * (latency / target) ^ w.
LATENCY_TARGET_MS = 8.3
LATENCY_EXPONENT = -0.07


@dataclass
class ArchParams:
    """The architecture parameters of one searched network.

    ``alphas[s]``: (layers - s, num_ops) operator logits of the cells at scale index ``s``.
    ``betas[s]`` (s = 1, 2): (layers - s - 1, 2) logits of [go down, stay] leaving scale ``s - 1``...
    as stored by the official search (betas[0] is unused and None).
    ``ratios[s]``: (layers - 1 or layers - s, num_widths) width logits.
    """

    alphas: list[torch.Tensor]
    betas: list[torch.Tensor | None]
    ratios: list[torch.Tensor]

    @property
    def layers(self) -> int:
        return int(self.alphas[0].shape[0])

    def clone(self) -> "ArchParams":
        return ArchParams(
            [a.detach().clone().float() for a in self.alphas],
            [None if b is None else b.detach().clone().float() for b in self.betas],
            [r.detach().clone().float() for r in self.ratios],
        )


def objective_acc_lat(miou: float, latency_ms: float, target_ms: float = LATENCY_TARGET_MS,
                      exponent: float = LATENCY_EXPONENT) -> float:
    """The paper's accuracy/latency trade-off used to pick the branch pairing."""
    return miou * math.pow(latency_ms / target_ms, exponent)


def _downs_to_path(downs: Sequence[int]) -> list[int]:
    path = [0]
    for d in downs[:-1]:
        path.append(path[-1] + d)
    return path


def betas_to_path(betas: list[torch.Tensor | None], end: int, layers: int) -> list[int]:
    """Most probable path (scale index per cell) from 1/8 to the branch end."""
    downs = [0] * layers
    if end == 1:
        probs = [float(b[0]) for b in betas[1][1:-1]]
        downs[max(range(len(probs)), key=lambda k: (probs[k], -k)) + 1] = 1
    elif end == 2:
        best, best_ij = 0.0, (0, 1)
        for j in range(layers - 4):
            for i in range(1, j - 1):
                prob = float(betas[1][i][0] * betas[2][j][0])
                if prob > best:
                    best, best_ij = prob, (i, j)
        downs[best_ij[0] + 1] = 1
        downs[best_ij[1] + 2] = 1
    path = _downs_to_path(downs)
    if path[-1] != end:
        raise ValueError(f"derived path {path} does not end at scale {end}")
    return path


def path_to_widths(path: list[int], ratios: list[torch.Tensor], width_choices: Sequence[float]) -> list[float]:
    """Argmax width of each cell output but the last."""
    widths = []
    for layer in range(1, len(path)):
        scale = path[layer]
        row = ratios[scale][layer - 1] if scale == 0 else ratios[scale][layer - scale]
        widths.append(float(width_choices[int(row.argmax())]))
    return widths


def _alpha(alphas: list[torch.Tensor], path: list[int], i: int) -> torch.Tensor:
    return alphas[path[i]][i - path[i]]


def alphas_to_ops(alphas: list[torch.Tensor], path: list[int], widths: list[float],
                  ignore_skip: bool = False) -> tuple[list[int], list[int], list[float]]:
    """Argmax op per cell with the official skip pruning; skipped cells are removed.

    Mutates ``alphas`` (rejected skips get -inf) exactly as the official code does.
    Returns (op indices, compacted path, compacted widths).
    """
    if len(path) != len(widths) + 1:
        raise ValueError(f"len(path) {len(path)} must be len(widths) {len(widths)} + 1")
    min_len = int(round(len(path) / 3.0)) + path[-1] * 2
    candidate_skips: list[tuple[int, float]] = []  # (position, softmax prob of skip)
    for i in range(len(path)):
        a = _alpha(alphas, path, i)
        if ignore_skip:
            a[SKIP] = -float("inf")
        if int(a.argmax()) == SKIP and (i == len(path) - 1 or path[i] == path[i + 1]):
            candidate_skips.append((i, float(F.softmax(a, dim=-1)[SKIP])))
    skip_positions = [pos for pos, _ in candidate_skips]
    downs_at = [pos for pos in range(len(path) - 1) if path[pos] < path[pos + 1]]
    if downs_at:
        downs_at.append(len(path))
        for pos1, pos2 in zip(downs_at[:-1], downs_at[1:]):
            # A segment between two down-samplings made only of skips: keep its least likely one as an op.
            if (pos1 + 1 in skip_positions and pos2 - 1 in skip_positions
                    and skip_positions.index(pos2 - 1) - skip_positions.index(pos1 + 1) == pos2 - pos1 - 2):
                min_score, min_pos = 1.0, -1
                for j in range(pos1 + 1, pos2):
                    score = float(F.softmax(_alpha(alphas, path, j), dim=-1)[SKIP])
                    if score <= min_score:
                        min_score, min_pos = score, j
                _alpha(alphas, path, min_pos)[SKIP] = -float("inf")
    if len(candidate_skips) > len(path) - min_len:
        # Python's sort is stable, like the official sorted(): equal scores keep position order.
        candidate_skips = sorted(candidate_skips, key=lambda t: t[1], reverse=True)[: len(path) - min_len]
    kept_skips = {pos for pos, _ in candidate_skips}
    ops: list[int] = []
    path_out: list[int] = []
    widths_out: list[float] = []
    width = widths[0] if widths else 1.0
    for i in range(len(path)):
        a = _alpha(alphas, path, i)
        if i < len(widths):
            width = widths[i]
        op = int(a.argmax())
        if op == SKIP:
            if i in kept_skips:
                if i == len(path) - 1:
                    widths_out = widths_out[:-1]
                continue
            a[SKIP] = -float("inf")
            op = int(a.argmax())
        path_out.append(path[i])
        if i < len(widths):
            widths_out.append(width)
        ops.append(op)
    if len(path_out) < min_len:
        raise ValueError(f"pruned branch has {len(path_out)} cells, fewer than the minimum {min_len}")
    return ops, path_out, widths_out


def width_choices_for(arch: ArchParams, width_choices: Sequence[float], ignore_skip: bool) -> list[float]:
    """The official rule: single-column ratios mean no width search (1.0 teacher, 4/12 otherwise)."""
    if arch.ratios[0].shape[1] == 1:
        return [1.0] if ignore_skip else [4.0 / 12]
    return list(width_choices)


def derive_branches(arch: ArchParams, width_choices: Sequence[float], ignore_skip: bool = False) -> dict[int, Branch]:
    """Derive the branch ending at each scale (0, 1, 2), in the official order and manner."""
    state = arch.clone()
    choices = width_choices_for(state, width_choices, ignore_skip)
    branches: dict[int, Branch] = {}
    for end in (0, 1, 2):
        # Official: betas are soft-maxed in place on every call, i.e. once more per end.
        state.betas[1] = F.softmax(state.betas[1], dim=-1)
        state.betas[2] = F.softmax(state.betas[2], dim=-1)
        path = betas_to_path(state.betas, end, state.layers)
        widths = path_to_widths(path, state.ratios, choices)
        ops, path, widths = alphas_to_ops(state.alphas, path, widths, ignore_skip=ignore_skip)
        branches[end] = Branch(end=end, ops=tuple(OP_NAMES[o] for o in ops), path=tuple(path), widths=tuple(widths))
    return branches


def choose_ends(miou02: float, latency02: float, miou12: float, latency12: float) -> tuple[int, int]:
    """Pair the 1/32 branch with 1/8 or 1/16 by the accuracy/latency objective."""
    if objective_acc_lat(miou02, latency02) > objective_acc_lat(miou12, latency12):
        return (2, 0)
    return (2, 1)


def derive_genotype(arch: ArchParams, ends: Sequence[int], width_choices: Sequence[float],
                    stem_width: float, head_width: float, num_classes: int = 19,
                    base_channels: int = 12, ignore_skip: bool = False) -> Genotype:
    """The genotype of the network whose branches end at ``ends`` (fusion order)."""
    branches = derive_branches(arch, width_choices, ignore_skip=ignore_skip)
    return Genotype(
        branches=tuple(branches[e] for e in ends),
        num_classes=num_classes,
        base_channels=base_channels,
        stem_width=stem_width,
        head_width=head_width,
    )
