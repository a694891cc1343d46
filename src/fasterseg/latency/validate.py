"""Can a table be trusted? Predict random derived networks from it, time them whole, compare.

Networks are sampled from the search space (random branch ends, depths, down-sampling
positions, operators and widths; a second branch shares a random prefix with the first, as
derived branches do). Each is timed whole with the table's own backend setting. Reported:
Spearman rank correlation, mean absolute percentage error of the raw prediction and after a
least-squares linear calibration (in-sample and leave-one-out), and a scatter plot.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fasterseg.genotype import Branch, Genotype
from fasterseg.latency.lut import LatencyTable
from fasterseg.latency.model import network_latency
from fasterseg.layers.names import OP_NAMES
from fasterseg.layers.rules import feature_channels, reduction_fits
from fasterseg.space.config import SupernetConfig
from fasterseg.utils.io import atomic_write_text, save_figure


def _random_branch(rng: random.Random, end: int, n_cells: int, widths: list[float], stem_w: float, head_w: float,
                   prefix: Branch | None = None, keep: int = 0, base_channels: int = 12) -> Branch:
    """A valid branch: path from 1/8 to ``end``; a stride-1 skip only between equal widths."""
    while True:
        if prefix is not None and keep:
            ops, path, ws = list(prefix.ops[:keep]), list(prefix.path[:keep]), list(prefix.widths[:keep])
        else:
            ops, path, ws = [], [0], []
        # Positions (cell indices) where the branch goes down, after the shared prefix.
        need = end - path[-1]
        free = list(range(len(path) - 1 if ops else 0, n_cells - 1))
        if need < 0 or need > len(free):
            keep = 0
            prefix = None
            continue
        downs = set(rng.sample(free, need))
        while len(path) < n_cells:
            path.append(path[-1] + (1 if len(path) - 1 in downs else 0))
        ops_out, ws_out = ops, ws
        for l in range(len(ops_out), n_cells):
            last = l == n_cells - 1
            w_in = stem_w if l == 0 else ws_out[l - 1]
            down = (not last) and path[l + 1] > path[l]
            op = rng.choice(OP_NAMES)
            w_out = head_w if last else rng.choice(widths)
            if op == "skip" and down and not reduction_fits(feature_channels(2 ** (path[l] + 4), base_channels, w_out)):
                op = rng.choice(OP_NAMES[1:])  # the factorized reduction needs an even width
            if op == "skip" and not down:
                if last and w_in != head_w:
                    op = rng.choice(OP_NAMES[1:])
                else:
                    w_out = w_in
            ops_out.append(op)
            if not last:
                ws_out.append(w_out)
        return Branch(end=end, ops=tuple(ops_out), path=tuple(path[:n_cells]), widths=tuple(ws_out))


def sample_genotypes(space: SupernetConfig, count: int, seed: int = 0, min_cells: int = 6) -> list[Genotype]:
    """``count`` random, valid derived networks of the search space."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        stem_w, head_w = rng.choice(space.stem_head_widths())
        n_cells = rng.randint(min(min_cells, space.layers), space.layers)
        ends = rng.choice([(2,), (1,), (0,), (2, 1), (2, 0), (2, 1, 0)])
        branches: list[Branch] = []
        for e in ends:
            if branches:
                keep = rng.randint(0, n_cells // 2)
                branches.append(_random_branch(rng, e, n_cells, space.width_choices, stem_w, head_w, branches[0], keep,
                                               space.base_channels))
            else:
                branches.append(_random_branch(rng, e, n_cells, space.width_choices, stem_w, head_w,
                                               base_channels=space.base_channels))
        out.append(Genotype(branches=tuple(branches), num_classes=space.num_classes, base_channels=space.base_channels,
                            stem_width=stem_w, head_width=head_w))
    return out


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    def ranks(v):
        v = np.asarray(v, dtype=float)
        order = v.argsort()
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):
            idx = np.where(v == value)[0]
            r[idx] = r[idx].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def mape(pred, true) -> float:
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    return float(np.mean(np.abs(pred - true) / true) * 100)


def fit_linear(pred, true) -> tuple[float, float]:
    """Least squares ``true ~ a * pred + b``."""
    a, b = np.polyfit(np.asarray(pred, float), np.asarray(true, float), 1)
    return float(a), float(b)


def loo_calibrated_mape(pred, true) -> float:
    """MAPE when each network's calibration is fitted on the others only."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    errs = []
    for i in range(len(pred)):
        mask = np.arange(len(pred)) != i
        a, b = fit_linear(pred[mask], true[mask])
        errs.append(abs(a * pred[i] + b - true[i]) / true[i])
    return float(np.mean(errs) * 100)


@dataclass
class ValidationReport:
    device: str
    backend: str
    precision: str
    clock: str
    size: tuple[int, int]
    samples: int
    spearman: float
    mape_raw: float
    mape_calibrated: float
    mape_calibrated_loo: float
    calibration: tuple[float, float]
    predicted_ms: list[float]
    measured_ms: list[float]
    plot: str

    def summary(self) -> str:
        a, b = self.calibration
        return "\n".join([
            f"lut validate: {self.samples} random networks at {self.size[0]}x{self.size[1]} on {self.device} "
            f"({self.backend}, {self.precision}, {self.clock} clock)",
            f"  Spearman rank correlation   {self.spearman:.3f}",
            f"  MAPE, raw prediction        {self.mape_raw:.1f} %",
            f"  MAPE, calibrated            {self.mape_calibrated:.1f} %  (measured = {a:.3f} * predicted + {b:.2f} ms)",
            f"  MAPE, calibrated (LOO)      {self.mape_calibrated_loo:.1f} %",
            f"  measured range              {min(self.measured_ms):.1f} .. {max(self.measured_ms):.1f} ms",
            f"  scatter plot                {self.plot}",
        ])


def measure_network(genotype: Genotype, backend, size: tuple[int, int]) -> float:
    from fasterseg.latency.specs import padded
    from fasterseg.nets.network import FasterSegNet, init_weights

    model = FasterSegNet(genotype, aux_heads=False)
    init_weights(model)
    return backend.time_module(model.eval(), (backend.batch, 3, *padded(size)))


def validate_table(table: LatencyTable, backend, samples: int = 20, seed: int = 0, size: tuple[int, int] | None = None,
                   out_dir: Path = Path("lut_validate"), space: SupernetConfig | None = None,
                   measure_missing: bool = False, progress: bool = True) -> ValidationReport:
    from tqdm import tqdm

    if samples < 3:
        raise ValueError(f"--samples must be at least 3 to fit and rank, got {samples}")
    size = tuple(size or table.meta.size)
    space = space or SupernetConfig()
    genotypes = sample_genotypes(space, samples, seed)
    predicted, measured = [], []
    for g in tqdm(genotypes, desc="networks", unit="net", disable=not progress):
        predicted.append(network_latency(g, table, size, backend=backend if measure_missing else None).total_ms)
        measured.append(measure_network(g, backend, size))
    a, b = fit_linear(predicted, measured)
    calibrated = [a * p + b for p in predicted]
    out_dir = Path(out_dir)
    plot = out_dir / "scatter.png"
    report = ValidationReport(
        device=table.meta.device, backend=table.meta.backend, precision=table.meta.precision,
        clock=table.meta.clock, size=size,
        samples=samples, spearman=spearman(predicted, measured), mape_raw=mape(predicted, measured),
        mape_calibrated=mape(calibrated, measured), mape_calibrated_loo=loo_calibrated_mape(predicted, measured),
        calibration=(a, b), predicted_ms=predicted, measured_ms=measured, plot=str(plot),
    )
    _scatter(report, plot)
    data = asdict(report)
    data["genotypes"] = [g.to_dict() for g in genotypes]
    atomic_write_text(out_dir / "validate.json", json.dumps(data, indent=1) + "\n")
    return report


def _scatter(r: ValidationReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(r.predicted_ms, r.measured_ms, s=22, color="#1f77b4", label="networks")
    lo = 0.0
    hi = max(max(r.predicted_ms), max(r.measured_ms)) * 1.05
    ax.plot([lo, hi], [lo, hi], "--", color="#888888", lw=1, label="measured = predicted")
    a, b = r.calibration
    ax.plot([lo, hi], [a * lo + b, a * hi + b], "-", color="#d62728", lw=1, label=f"calibration {a:.2f}x + {b:.1f}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("predicted from table (ms)")
    ax.set_ylabel("measured whole network (ms)")
    ax.set_title(f"{r.backend} {r.precision}, {r.size[0]}x{r.size[1]}, {r.clock} clock\nSpearman {r.spearman:.3f}, "
                 f"MAPE {r.mape_raw:.1f}% raw, {r.mape_calibrated:.1f}% calibrated", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
