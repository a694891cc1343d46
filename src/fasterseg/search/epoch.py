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
from typing import Callable, Sequence

import torch

from fasterseg.data.base import IGNORE_INDEX
from fasterseg.evaluate.confusion import ConfusionMatrix
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
    """mIoU of each of the five outputs over ``dataset`` (one image at a time, eval mode).

    With ``seed``, the widths sampled for an image depend on (seed, image index) only, so the
    scores neither depend on how images are shared among processes nor touch the global
    random stream. (A ``Subset``'s indices are the images' indices.)
    """
    was_training = net.training
    net.eval()
    k = net.cfg.num_classes
    matrices = [ConfusionMatrix(k, ignore_index, device) for _ in OUTPUT_NAMES]
    indices = getattr(dataset, "indices", range(len(dataset)))
    for i in range(len(dataset)):
        image, label = dataset[i]
        sample = widths
        if seed is not None:
            g = torch.Generator().manual_seed(seed * 1_000_003 + int(indices[i]))
            sample = net.sample_widths(arch, widths, generator=g)
        outputs = net(image[None].to(device), arch, sample)
        for matrix, logits in zip(matrices, outputs):
            matrix.update(logits.argmax(1)[0], label.to(device))
    net.train(was_training)
    for m in matrices:
        m.all_reduce()
    return [m.miou() for m in matrices]


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
