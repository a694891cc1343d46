"""Random students of a given latency: the control a searched student is measured against.

Critics of NAS ask whether the search beats architectures drawn at random from the same space
at the same cost. A random student here is what the search itself could have returned: random
architecture parameters (alphas, betas and width logits, each a standard normal) turned into a
network by the paper's derivation rules (:func:`fasterseg.nets.derive.derive_genotype`), with a
random branch pairing. Uniform draws almost never land near a fast searched student (on the
CamVid CPU table, 0 of 200,000 within 5% of its latency), so the draw is conditioned on the
latency window by a Metropolis chain on the parameters: a proposal redraws one row of one
parameter tensor from its normal prior, and is accepted when the derived network's latency stays
inside the window. Redrawing from the prior makes the acceptance ratio exactly that indicator, so
after a walk into the window the chain samples the prior conditioned on the window. Each student
is its own chain (seed, index): the students are independent draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from fasterseg.genotype import Genotype
from fasterseg.nets.derive import ArchParams, derive_genotype
from fasterseg.space.config import SupernetConfig
from fasterseg.space.supernet import ArchParameters

PAIRINGS = ((2, 0), (2, 1))  # the 1/32 branch with the 1/8 or the 1/16 one, as the search derives


class WindowUnreachable(ValueError):
    """No network of the architecture was found inside the latency window; ``closest_ms`` is the
    nearest the chain came (a space whose widths cannot reach a family member's window says so)."""

    def __init__(self, message: str, closest_ms: float):
        super().__init__(message)
        self.closest_ms = closest_ms


@dataclass(frozen=True)
class RandomStudent:
    genotype: Genotype
    latency_ms: float
    steps: int  # proposals the chain made (walk into the window, then mixing)
    params: ArchParams  # the architecture parameters it was derived from (for scoring it inside the supernet)


def random_arch_params(space: SupernetConfig, num_widths: int, g: torch.Generator) -> ArchParams:
    """Architecture parameters of ``space`` with every entry a standard normal draw: a random point the
    derivation rules turn into a random network (and what the latency leverage benchmark redraws)."""
    shapes = ArchParameters(space.layers, num_widths).to_arch_params()
    draw = lambda t: torch.randn(t.shape, generator=g)  # noqa: E731
    return ArchParams([draw(a) for a in shapes.alphas], [None if b is None else draw(b) for b in shapes.betas],
                      [draw(r) for r in shapes.ratios])


def _rows(params: ArchParams) -> list[tuple[torch.Tensor, int]]:
    tensors = [*params.alphas, *(b for b in params.betas if b is not None), *params.ratios]
    return [(t, i) for t in tensors for i in range(t.shape[0])]


def sample_students_at_latency(space: SupernetConfig, arch: str, latency_of: Callable[[Genotype], float],
                               target_ms: float, tolerance: float = 0.05, count: int = 4, seed: int = 0,
                               mix_steps: int = 300, max_steps: int = 20000,
                               pairings: Sequence[tuple[int, int]] = PAIRINGS) -> list[RandomStudent]:
    """``count`` independent random students of ``arch`` whose ``latency_of`` lies within
    ``tolerance`` (a fraction) of ``target_ms``; each chain makes ``mix_steps`` proposals inside
    the window after reaching it. Raises WindowUnreachable (a ValueError) when a chain cannot
    reach the window."""
    spec = space.arch(arch)
    num_widths = len(space.width_choices) if spec.search_width else 1
    lo, hi = target_ms * (1 - tolerance), target_ms * (1 + tolerance)

    def distance(ms: float) -> float:
        return max(lo - ms, ms - hi, 0.0)

    students = []
    for index in range(count):
        g = torch.Generator().manual_seed(seed * 1_000_003 + index)
        ends = pairings[int(torch.randint(len(pairings), (1,), generator=g))]

        def derive(params: ArchParams) -> tuple[Genotype, float] | None:
            try:  # the derivation may prune a branch below its minimum depth: not a network
                genotype = derive_genotype(params, ends, space.width_choices, spec.stem_width, spec.head_width,
                                           num_classes=space.num_classes, base_channels=space.base_channels,
                                           ignore_skip=spec.ignore_skip)
            except ValueError:
                return None
            return genotype, float(latency_of(genotype))

        params = random_arch_params(space, num_widths, g)
        current = derive(params)
        while current is None:
            params = random_arch_params(space, num_widths, g)
            current = derive(params)
        rows = _rows(params)
        steps = mixed = 0
        while mixed < mix_steps:
            if steps >= max_steps:
                raise WindowUnreachable(f"random student {index}: no network within {100 * tolerance:g}% of "
                                        f"{target_ms:.3f} ms after {max_steps} proposals (closest {current[1]:.3f} ms)",
                                        current[1])
            steps += 1
            tensor, row = rows[int(torch.randint(len(rows), (1,), generator=g))]
            old = tensor[row].clone()
            tensor[row] = torch.randn(old.shape, generator=g)
            proposed = derive(params)
            inside = distance(current[1]) == 0
            # Outside the window: walk towards it; inside: stay inside (the conditioned prior).
            if proposed is not None and (distance(proposed[1]) == 0 if inside else
                                         distance(proposed[1]) <= distance(current[1])):
                current = proposed
            else:
                tensor[row] = old
            mixed += inside
        students.append(RandomStudent(current[0], current[1], steps, params.clone()))
    return students


def params_to_dict(params: ArchParams) -> dict[str, list]:
    """The official layout of ``arch.json`` (``alpha_0`` ... ``ratio_2``), JSON-ready."""
    module = ArchParameters(params.layers, params.ratios[0].shape[1])
    module.load_arch_params(params)
    return {k: v.detach().tolist() for k, v in module.named_parameters()}


def params_from_dict(data: dict[str, list]) -> ArchParams:
    """The inverse of :func:`params_to_dict` (an ``arch.json`` entry)."""
    tensors = {k: torch.tensor(v, dtype=torch.float32) for k, v in data.items()}
    module = ArchParameters(tensors["alpha_0"].shape[0], tensors["ratio_0"].shape[1])
    module.load_state_dict(tensors)
    return module.to_arch_params()


def one_hot(params: ArchParams, scale: float = 100.0) -> ArchParams:
    """Each row's argmax at ``scale``, the rest 0: the supernet then computes (up to exp(-scale))
    the one network those choices pick, the way the paper's supernet ranks a discrete architecture."""
    def hard(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(t.argmax(-1), t.shape[-1]).to(t.dtype) * scale

    return ArchParams([hard(a) for a in params.alphas], [None if b is None else hard(b) for b in params.betas],
                      [hard(r) for r in params.ratios])


def score_in_supernet(net, arch: str, params: ArchParams, dataset, calibration: Sequence = (),
                      device: str | torch.device = "cpu", seed: int = 0) -> list[float]:
    """mIoU of the supernet's five outputs when it computes the one network ``params`` choose (their
    argmax, made one-hot), with the supernet's own weights: the one-shot estimate a search ranks
    architectures by. With ``calibration`` batches the batch-norm statistics are re-estimated for
    that network first (they stay so: score a copy of a supernet you still train). The 1/16
    branch is scored on the path the supernet computes, one cell later than the official
    derivation puts its down-sampling (see ``tests/space/test_supernet.py``)."""
    from fasterseg.search.epoch import evaluate_outputs, recalibrate_batchnorm

    module = net.arch[arch]
    saved = module.to_arch_params()
    module.load_arch_params(one_hot(params))
    try:
        if calibration:
            recalibrate_batchnorm(net, arch, calibration, "argmax", seed=seed)
        return evaluate_outputs(net, arch, dataset, "argmax", device)
    finally:
        module.load_arch_params(saved)
