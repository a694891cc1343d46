"""End-of-epoch work: score the supernet's outputs, derive the networks, adapt the latency weight.

Which branch pairing a derived network keeps (1/32 with 1/8 or with 1/16) is decided by the
paper's objective mIoU * (latency / 8.3 ms) ^ -0.07, from the supernet's scores of the fused
outputs 1/8+1/32 and 1/16+1/32 and the latencies of the two candidate networks; the latency of
a genotype comes from a callable (e.g. a lookup table at the target resolution).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from fasterseg.data.base import IGNORE_INDEX
from fasterseg.genotype import Genotype
from fasterseg.nets.derive import choose_ends
from fasterseg.space.supernet import OUTPUT_NAMES, Supernet, WidthMode
from fasterseg.utils.io import atomic_write_text

# Genotype -> milliseconds per frame at the target resolution.
GenotypeLatencyFn = Callable[[Genotype], float]


@torch.no_grad()
def evaluate_outputs(net: Supernet, arch: str, dataset, widths: WidthMode = "arch",
                     device: str | torch.device = "cpu", ignore_index: int = IGNORE_INDEX,
                     seed: int | None = None) -> list[float]:
    """mIoU of each of the five outputs over ``dataset`` (one image at a time, eval mode), through
    the scoring loop of training and ``eval`` (``evaluate.scorer.score_dataset``), counts summed
    over processes.

    With ``seed``, the widths sampled for an image depend on (seed, image index) only, so the
    scores neither depend on how images are shared among processes nor touch the global
    random stream. (A ``Subset``'s indices are the images' indices.)
    """
    from fasterseg.data.base import DatasetInfo
    from fasterseg.evaluate.scorer import score_dataset

    was_training = net.training
    net.eval()
    k = net.cfg.num_classes
    info = DatasetInfo("supernet outputs", tuple(f"class {c}" for c in range(k)), ((0, 0, 0),) * k, ignore_index)
    indices = getattr(dataset, "indices", range(len(dataset)))
    labels: dict[int, torch.Tensor] = {}

    def predict(i: int) -> list[torch.Tensor]:
        image, labels[i] = dataset[i]
        sample = widths
        if seed is not None:
            g = torch.Generator().manual_seed(seed * 1_000_003 + int(indices[i]))
            sample = net.sample_widths(arch, widths, generator=g)
        return [logits.argmax(1)[0] for logits in net(image[None].to(device), arch, sample)]

    results = score_dataset(predict, dataset, outputs=len(OUTPUT_NAMES), truth=labels.pop, info=info,
                            all_reduce=True, desc="score outputs")
    net.train(was_training)
    return [r.miou for r in results]


@torch.no_grad()
def recalibrate_batchnorm(net: Supernet, arch: str, batches: Iterable[Sequence[torch.Tensor]],
                          widths: WidthMode = "arch", seed: int = 0) -> int:
    """Re-estimate the batch-norm statistics that scoring ``arch`` uses, as a plain average over
    ``batches`` of training crops (weights unchanged); returns how many batch norms were reached.

    Why: the running statistics are exponential averages over steps in which the weights moved
    and each width's batch norm ran only now and then, so they lag the weights; on the CamVid
    supernet re-estimating them alone moved the full-width score of one epoch from 15-23 to
    23-25 mIoU (``benchmarks/supernet_bn_check.py``), and the end-of-epoch scores choose the
    derived networks. Widths are drawn per batch (``seed``) as scoring draws them per image; a
    batch norm these passes do not reach keeps the statistics it had.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = net.training
    net.train()
    g = torch.Generator().manual_seed(seed)
    for images, _ in batches:
        net(images, arch, net.sample_widths(arch, widths, generator=g))
    net.train(was_training)
    reached = 0
    for m, (mean, var, count, momentum) in zip(norms, saved):
        m.momentum = momentum
        if int(m.num_batches_tracked) == 0:
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
        else:
            reached += 1
        m.num_batches_tracked.copy_(count)
    return reached


@dataclass
class DerivedArch:
    """One architecture's network at the end of an epoch, with what chose it."""

    genotype: Genotype
    miou: dict[str, float]  # per output name
    latency_ms: dict[str, float]  # per candidate pairing, "8_32" and "16_32"

    @property
    def fps(self) -> dict[str, float]:
        return {k: 1000.0 / v for k, v in self.latency_ms.items()}


def derive_arch(net: Supernet, arch: str, miou: Sequence[float], latency_of: GenotypeLatencyFn) -> DerivedArch:
    """Derive both pairings, time them, keep the one the accuracy/latency objective prefers."""
    scores = dict(zip(OUTPUT_NAMES, miou))
    candidates = {"8_32": net.genotype(arch, (2, 0)), "16_32": net.genotype(arch, (2, 1))}
    latency = {name: float(latency_of(g)) for name, g in candidates.items()}
    ends = choose_ends(scores["8_32"], latency["8_32"], scores["16_32"], latency["16_32"])
    chosen = candidates["8_32"] if ends == (2, 0) else candidates["16_32"]
    return DerivedArch(chosen, scores, latency)


def save_derived(derived: DerivedArch, path: str | Path) -> None:
    """``<arch>.json``: the genotype plus the scores that chose it (``Genotype.from_dict`` of
    the ``genotype`` entry rebuilds it)."""
    data = {"genotype": derived.genotype.to_dict(), "miou": derived.miou, "latency_ms": derived.latency_ms,
            "fps": derived.fps}
    atomic_write_text(Path(path), json.dumps(data, indent=2) + "\n")


def adapt_latency_weight(weight: float, fps: Sequence[float], fps_min: float, fps_max: float) -> float:
    """The official rule: halve when a candidate reaches ``fps_max``, else double when one
    falls to ``fps_min`` or below; otherwise keep."""
    if any(f >= fps_max for f in fps):
        return weight / 2
    if any(f <= fps_min for f in fps):
        return weight * 2
    return weight
