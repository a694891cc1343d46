"""The paper's latency regulariser, built from a supernet latency model with the official flags.

A latency model answers ``latency(net, arch, alpha, beta, width)``: the expected latency (ms,
differentiable) when the operator, path and width distributions are the searched ones
(``True``) or uniform / full width (``False``), as the official ``forward_latency`` does.

The decoupled regulariser weighs three terms, each letting one kind of choice feel latency
(operators 1/500, paths 497/500, widths 2/500; without width search 1/500 and 499/500). The
coupled one (all choices at once) is the paper's collapse ablation.
"""

from __future__ import annotations

from typing import Callable

import torch

from fasterseg.search.steps import LatencyFn
from fasterseg.space.supernet import Supernet

SupernetLatency = Callable[[Supernet, str, bool, bool, bool], torch.Tensor]
RATIOS_WITH_WIDTH = (1 / 500, 497 / 500, 2 / 500)
RATIOS_WITHOUT_WIDTH = (1 / 500, 499 / 500)


def decoupled(latency: SupernetLatency, ratios: tuple[float, ...] | None = None) -> LatencyFn:
    """r_a * Lat(alpha) + r_b * Lat(beta) + r_g * Lat(width), the ratios by whether the
    architecture searches widths (unless given)."""

    def loss(net: Supernet, arch: str) -> torch.Tensor:
        searches_width = net.cfg.arch(arch).search_width and len(net.cfg.width_choices) > 1
        r = ratios if ratios is not None else (RATIOS_WITH_WIDTH if searches_width else RATIOS_WITHOUT_WIDTH)
        total = r[0] * latency(net, arch, True, False, False) + r[1] * latency(net, arch, False, True, False)
        if len(r) > 2:
            total = total + r[2] * latency(net, arch, False, False, True)
        return total

    return loss


def coupled(latency: SupernetLatency) -> LatencyFn:
    """One term with every choice searched together (the collapsing variant)."""
    return lambda net, arch: latency(net, arch, True, True, True)
