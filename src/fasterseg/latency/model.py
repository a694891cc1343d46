"""The latency model: a derived network's latency from a table, and the supernet's expected,
differentiable latency used by the search. Both read the same table through the same keys.

Derived networks
----------------
:func:`network_latency` sums the table entries of everything the eval-mode network computes
(:func:`fasterseg.latency.specs.network_pieces`: stem, each computed cell once, each branch's
fusion, the fusion conv and the 1/8 head with its final resize; no auxiliary heads). Entries the
table lacks are measured on demand when a backend is given, otherwise an error lists them all.

Supernet (differentiable)
-------------------------
:func:`supernet_latency` ``(lut, alphas, betas, ratios, ends=(0, 1, 2), combine="union",
include_fusion=True) -> torch.Tensor`` (a scalar, milliseconds), where ``lut`` is a
:class:`SupernetLatencyLUT` built once from a table, the search space (a
:class:`~fasterseg.space.config.SupernetConfig`: layers L, base channels F, width choices, classes),
the architecture whose stem and head widths apply, and the input size. The architecture
parameters are in the official format (``search/model_search.py``):

- ``alphas[s]``: ``(L - s, num_ops)`` operator **logits** of the cells at scale index ``s``
  (row ``i - s`` is the cell of layer ``i``); soft-maxed here. One alpha per cell weighs both its
  stride-1 op and its stride-2 (down) op, as in the official supernet.
- ``betas[s]`` for ``s = 1, 2`` (``betas[0]`` is ignored, may be None): ``(L - s - 1, 2)``
  **logits** of where the cell of layer ``i`` (row ``i - s - 1``) at scale ``s`` takes its input:
  column 0 from the finer scale's down op, column 1 from the same scale ("keep"). The first cell
  of a scale (``i == s``) has no choice. Soft-maxed here.
- ``ratios[s]``: ``(L - 1, W)``, ``(L - 1, W)``, ``(L - 2, W)`` for ``s = 0, 1, 2``: the **sampled
  width distributions** (e.g. hard straight-through Gumbel-softmax samples, or fixed one-hots)
  over ``space.width_choices``. The feature at scale ``s`` after layer ``i`` has width row
  ``i - max(0, s - 1)`` of ``ratios[s]``; the stem output has the stem width and the last
  layer's outputs the head width.

To reproduce the paper's decoupled terms pass uniform logits (zeros) for the parameters that
are not being regularised and one-hot max-width rows for ``ratios`` (:func:`fixed_ratios`);
:func:`decoupled_latency` does exactly that with the paper's weights (1/500, 497/500, 2/500).

What it computes: each cell's op latency is the expectation over ``softmax(alpha)`` and over the
input and output width distributions (``sum_k a_k * p_in^T Lat_k p_out``; with one-hot samples
this is the official ``latency(argmax) * score_in * score_out`` in value; the gradient then
reaches every entry of a sample, ``Lat[a, b_out]``, where the official one reaches the argmax
entry only). The betas define, for each end
scale ``e``, a distribution over down-sampling paths (traced back from the last layer);
``q_e(op)`` is the probability that the path to ``e`` runs through an op. ``combine="union"``
charges each op with the probability that any counted branch uses it (``1 - prod_e(1 - q_e)``:
shared cells count once, exact when the parameters are one-hot), plus the stem once and the
branches' fusion pieces, the fusion conv and the head. With one-hot parameters this equals
:func:`network_latency` of the network they describe (all L cells of each branch: the
derivation's later pruning of skips is not something the supernet can charge). ``combine="sum"`` instead adds the ends'
latencies separately, each with its own stem, as the official search does.

Differences from the official ``Network_Multi_Path.forward_latency`` (which we read to define
this): it looks up the ``betas`` row with the loop variable of the scale loop left over from the
previous loop (so the 1/16 cells use the 1/32 betas), it updates the accumulated latency of a
scale before the next scale reads the previous layer's value, it charges a cell's down op with
that cell's stride-1 op too, and it counts no fusion or head. Those are slips, not design; we
compute the expectation they aimed at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from fasterseg.genotype import Genotype
from fasterseg.latency.lut import LatencyTable, MissingEntriesError, OpSpec
from fasterseg.latency.specs import fusion_specs, head_specs, network_pieces, padded, stem_specs
from fasterseg.layers.names import OP_NAMES
from fasterseg.layers.rules import reduction_fits
from fasterseg.space.config import SupernetConfig


# -- derived networks ------------------------------------------------------------------------
@dataclass
class NetworkLatency:
    """Predicted latency of one derived network, with the per-part breakdown."""

    total_ms: float
    parts: dict[str, float]
    pieces: list[tuple[str, str, float]] = field(default_factory=list)  # (label, key, ms)

    @property
    def fps(self) -> float:
        return 1000.0 / self.total_ms if self.total_ms > 0 else float("inf")


def fill_missing(table: LatencyTable, specs: Sequence[OpSpec], backend=None) -> None:
    """Measure the entries ``specs`` need that ``table`` lacks, or raise listing them."""
    missing = table.missing(specs)
    if not missing:
        return
    if backend is None:
        raise MissingEntriesError(missing, table)
    from fasterseg.latency.measure import measure_into

    measure_into(table, missing, backend, progress=False)


def network_latency(genotype: Genotype, table: LatencyTable, size: tuple[int, int] | None = None,
                    backend=None) -> NetworkLatency:
    """Latency of the eval-mode network at ``size`` (default: the table's size), from ``table``."""
    size = tuple(size or table.meta.size)
    pieces = network_pieces(genotype, size)
    fill_missing(table, [p.spec for p in pieces], backend)
    parts: dict[str, float] = {}
    rows = []
    for p in pieces:
        ms = table.get(p.spec)
        parts[p.part] = parts.get(p.part, 0.0) + ms
        rows.append((p.label, p.spec.key, ms))
    return NetworkLatency(sum(parts.values()), parts, rows)


# -- supernet --------------------------------------------------------------------------------
def _same(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9


class SupernetLatencyLUT:
    """The table entries the supernet can need, gathered once into tensors.

    ``cells[(s, stride)]``: ``(num_ops, n, n)`` milliseconds for input width ``a`` and output
    width ``b`` over :attr:`widths` (the width choices plus the stem and head widths); combinations
    the supernet never forms are 0. ``refine16``/``refine8``: the refine conv's milliseconds by the
    width of the features it concatenates. Missing entries are measured with ``backend`` when
    given, otherwise one error lists them.
    """

    def __init__(self, table: LatencyTable, space: SupernetConfig, arch: str, size: tuple[int, int], backend=None):
        self.space, self.arch, self.size = space, space.arch(arch), (int(size[0]), int(size[1]))
        stem_width, head_width = self.arch.stem_width, self.arch.head_width
        widths = list(space.width_choices)
        for extra in (stem_width, head_width):
            if not any(_same(extra, w) for w in widths):
                widths.append(extra)
        self.widths = tuple(widths)
        n = len(widths)
        self.embed = torch.zeros(len(space.width_choices), n)
        for i in range(len(space.width_choices)):
            self.embed[i, i] = 1.0
        self.stem_onehot = self._onehot(stem_width)
        self.head_onehot = self._onehot(head_width)
        hp, wp = padded(self.size)
        nf = space.num_filters
        choice_idx = list(range(len(space.width_choices)))
        needed: dict[tuple, OpSpec] = {}
        for s in range(3):
            stride_px = 2 ** (s + 3)
            h, w = hp // stride_px, wp // stride_px
            ins = set(choice_idx) | ({self._idx(stem_width)} if s == 0 else set())
            outs = set(choice_idx) | {self._idx(head_width)}
            for k, op in enumerate(OP_NAMES):
                for a in ins:
                    for b in outs:
                        needed[("cell", s, 1, k, a, b)] = OpSpec(op, h, w, nf(stride_px, widths[a]), nf(stride_px, widths[b]), 1)
                    if s < 2:
                        for b in choice_idx:
                            if op == "skip" and not reduction_fits(nf(stride_px * 2, widths[b])):
                                continue  # cannot exist; its weight in the expectation must be 0
                            needed[("cell", s, 2, k, a, b)] = OpSpec(op, h, w, nf(stride_px, widths[a]), nf(stride_px * 2, widths[b]), 2)
        self.stem_specs = stem_specs(space.base_channels, stem_width, self.size)
        for i, sp in enumerate(self.stem_specs):
            needed[("stem", i)] = sp
        sizes = self.size
        for a in set(choice_idx):
            arm_2 = fusion_specs(space.base_channels, head_width, sizes, 2, nf(16, widths[a]), 0)
            needed[("refine16", a)] = arm_2[1]
        for a in set(choice_idx) | {self._idx(stem_width)}:
            needed[("refine8", a)] = fusion_specs(space.base_channels, head_width, sizes, 1, 0, nf(8, widths[a]))[1]
        base2 = fusion_specs(space.base_channels, head_width, sizes, 2, 1, 1)
        needed[("arm32",)] = base2[0]
        needed[("arm16",)] = base2[2]
        for nb in (1, 2, 3):
            ffm, head = head_specs(space.base_channels, head_width, sizes, nb, space.num_classes)
            needed[("ffm", nb)] = ffm
            needed[("head", nb)] = head
        fill_missing(table, list(needed.values()), backend)
        ms = {k: table.get(v) for k, v in needed.items()}
        self.cells = {(s, st): torch.zeros(len(OP_NAMES), n, n, dtype=torch.float64)
                      for s in range(3) for st in ((1, 2) if s < 2 else (1,))}
        for key, value in ms.items():
            if key[0] == "cell":
                _, s, st, k, a, b = key
                self.cells[(s, st)][k, a, b] = value
        self.stem_ms = sum(ms[("stem", i)] for i in range(3))
        self.refine16 = torch.zeros(n, dtype=torch.float64)
        self.refine8 = torch.zeros(n, dtype=torch.float64)
        for key, v in ms.items():
            if key[0] == "refine16":
                self.refine16[key[1]] = v
            elif key[0] == "refine8":
                self.refine8[key[1]] = v
        self.arm32_ms = ms[("arm32",)]
        self.arm16_ms = ms[("arm16",)]
        self.ffm_head_ms = {nb: ms[("ffm", nb)] + ms[("head", nb)] for nb in (1, 2, 3)}

    def _idx(self, width: float) -> int:
        for i, w in enumerate(self.widths):
            if _same(w, width):
                return i
        raise KeyError(width)

    def _onehot(self, width: float) -> torch.Tensor:
        v = torch.zeros(len(self.widths))
        v[self._idx(width)] = 1.0
        return v


def _softmax(x: torch.Tensor) -> torch.Tensor:
    return F.softmax(x, dim=-1)


def supernet_latency(lut: SupernetLatencyLUT, alphas: Sequence[torch.Tensor], betas: Sequence[torch.Tensor | None],
                     ratios: Sequence[torch.Tensor], ends: Sequence[int] = (0, 1, 2), combine: str = "union",
                     include_fusion: bool = True) -> torch.Tensor:
    """Expected latency (ms) of the supernet's derived network; differentiable in all parameters.

    See the module docstring for the parameter format and what is computed.
    """
    space = lut.space
    L = space.layers
    if combine not in ("union", "sum"):
        raise ValueError(f"combine must be 'union' or 'sum', got {combine!r}")
    ends = tuple(sorted(set(ends)))
    if not ends or any(e not in (0, 1, 2) for e in ends):
        raise ValueError(f"ends must be a non-empty subset of (0, 1, 2), got {ends}")
    _check_shapes(alphas, betas, ratios, L, len(space.width_choices))
    ref = alphas[0]
    dtype, device = ref.dtype, ref.device
    cells = {k: v.to(device=device, dtype=dtype) for k, v in lut.cells.items()}
    embed = lut.embed.to(device=device, dtype=dtype)
    stem_w = lut.stem_onehot.to(device=device, dtype=dtype)
    head_w = lut.head_onehot.to(device=device, dtype=dtype)

    def width(s: int, i: int) -> torch.Tensor:
        """Distribution of the width of the feature at scale s after layer i (-1: the stem)."""
        if i < 0:
            return stem_w
        if i == L - 1:
            return head_w
        return ratios[s][i - max(0, s - 1)] @ embed

    a = [_softmax(x) for x in alphas]
    b = {s: _softmax(betas[s]) for s in (1, 2)}

    # Expected op latency of every (layer, scale, kind) op; kind 0: stride 1, kind 1: down.
    op_ms: dict[tuple[int, int, int], torch.Tensor] = {}
    for i in range(L):
        for s in range(min(i, 2) + 1):
            p_in = width(s, i - 1)
            alpha = a[s][i - s]
            per_op = torch.einsum("a,kab,b->k", p_in, cells[(s, 1)], width(s, i))
            op_ms[(i, s, 0)] = (alpha * per_op).sum()
            if s < 2 and i < L - 1:
                per_op = torch.einsum("a,kab,b->k", p_in, cells[(s, 2)], width(s + 1, i))
                op_ms[(i, s, 1)] = (alpha * per_op).sum()

    usage = {e: _path_usage(e, L, b, dtype, device) for e in ends}
    zero = torch.zeros((), dtype=dtype, device=device)
    if combine == "union":
        total = zero + lut.stem_ms
        for key, ms in op_ms.items():
            unused = torch.ones((), dtype=dtype, device=device)
            for e in ends:
                if key in usage[e]:
                    unused = unused * (1 - usage[e][key])
            total = total + (1 - unused) * ms
    else:
        total = zero
        for e in ends:
            total = total + lut.stem_ms
            for key, q in usage[e].items():
                total = total + q * op_ms[key]
    if include_fusion:
        r16 = lut.refine16.to(device=device, dtype=dtype)
        r8 = lut.refine8.to(device=device, dtype=dtype)
        for e in ends:
            q = usage[e]
            if e >= 1:
                # where the branch leaves 1/8, and the width entering that cell
                total = total + sum(q[(i, 0, 1)] * (width(0, i - 1) @ r8) for i in range(L - 1) if (i, 0, 1) in q)
            if e == 2:
                total = total + lut.arm32_ms + lut.arm16_ms
                total = total + sum(q[(i, 1, 1)] * (width(1, i - 1) @ r16) for i in range(1, L - 1) if (i, 1, 1) in q)
            elif e == 1:
                total = total + lut.arm16_ms
        total = total + lut.ffm_head_ms[len(ends)]
    return total


def fixed_ratios(space: SupernetConfig, width: float | None = None, dtype=torch.float32) -> list[torch.Tensor]:
    """``ratios`` in which every cell output has one fixed width (default: the largest choice),
    e.g. the "width max" of the decoupled latency terms or a network without width search."""
    choices = list(space.width_choices)
    width = max(choices) if width is None else width
    idx = next((i for i, w in enumerate(choices) if _same(w, width)), None)
    if idx is None:
        raise ValueError(f"width {width} is not one of the width choices {choices}")
    out = []
    for rows in (space.layers - 1, space.layers - 1, space.layers - 2):
        r = torch.zeros(rows, len(choices), dtype=dtype)
        r[:, idx] = 1.0
        out.append(r)
    return out


# The paper's split of the latency loss over alphas, betas and widths (r_a, r_b, r_g).
DECOUPLED_WEIGHTS = (1 / 500, 497 / 500, 2 / 500)
DECOUPLED_WEIGHTS_NO_WIDTH = (1 / 500, 499 / 500)


def decoupled_latency(lut: SupernetLatencyLUT, alphas, betas, ratios=None, weights: Sequence[float] | None = None,
                      **kwargs) -> torch.Tensor:
    """The paper's decoupled latency term: ``r_a * Lat(alpha; beta uniform, width max) +
    r_b * Lat(beta; alpha uniform, width max) + r_g * Lat(width; alpha, beta uniform)``.

    ``ratios``: the sampled widths, or None without width search (then only the first two terms,
    weighted 1/500 and 499/500 by default). Extra keyword arguments go to :func:`supernet_latency`.
    """
    ref = alphas[0]
    widest = [r.to(device=ref.device) for r in fixed_ratios(lut.space, dtype=ref.dtype)]
    flat_alphas = [torch.zeros_like(a) for a in alphas]
    flat_betas = [None if b is None else torch.zeros_like(b) for b in betas]
    if weights is None:
        weights = DECOUPLED_WEIGHTS if ratios is not None else DECOUPLED_WEIGHTS_NO_WIDTH
    total = weights[0] * supernet_latency(lut, alphas, flat_betas, widest, **kwargs)
    total = total + weights[1] * supernet_latency(lut, flat_alphas, betas, widest, **kwargs)
    if ratios is not None:
        total = total + weights[2] * supernet_latency(lut, flat_alphas, flat_betas, ratios, **kwargs)
    return total


def _path_usage(end: int, L: int, b: dict[int, torch.Tensor], dtype, device) -> dict[tuple[int, int, int], torch.Tensor]:
    """Probability that the path ending at scale ``end`` runs through each op (i, s, kind)."""
    q: dict[tuple[int, int, int], torch.Tensor] = {(L - 1, end, 0): torch.ones((), dtype=dtype, device=device)}
    for i in range(L - 1, 0, -1):
        for s in range(min(i, 2) + 1):
            u = q.get((i, s, 0))
            d = q.get((i, s, 1))
            if u is None and d is None:
                continue
            use = (u if u is not None else 0) + (d if d is not None else 0)
            if s == 0:
                _add(q, (i - 1, 0, 0), use)
            elif i == s:
                _add(q, (i - 1, s - 1, 1), use)
            else:
                beta = b[s][i - s - 1]
                _add(q, (i - 1, s - 1, 1), use * beta[0])
                _add(q, (i - 1, s, 0), use * beta[1])
    return q


def _add(q: dict, key, value) -> None:
    q[key] = q[key] + value if key in q else value


def _check_shapes(alphas, betas, ratios, L: int, n_widths: int) -> None:
    for s in range(3):
        want = (L - s, len(OP_NAMES))
        if tuple(alphas[s].shape) != want:
            raise ValueError(f"alphas[{s}]: expected shape {want}, got {tuple(alphas[s].shape)}")
    for s in (1, 2):
        want = (L - s - 1, 2)
        if betas[s] is None or tuple(betas[s].shape) != want:
            raise ValueError(f"betas[{s}]: expected shape {want}, got {None if betas[s] is None else tuple(betas[s].shape)}")
    for s, rows in enumerate((L - 1, L - 1, L - 2)):
        want = (rows, n_widths)
        if tuple(ratios[s].shape) != want:
            raise ValueError(f"ratios[{s}]: expected shape {want}, got {tuple(ratios[s].shape)}")
