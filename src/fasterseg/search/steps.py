"""One search iteration: an architecture step on one half of the data, a weight step on the other.

What each loss sums is the official search's (``Network_Multi_Path._loss`` and
``Architect``), made explicit:

- search phase: every architecture with its sampled widths, then the sandwich rule's full- and
  narrowest-width passes of the *last* architecture (the student);
- pretraining (no architecture updates): full and narrowest width plus two random-width passes,
  all through the *first* architecture's stem and heads (the official network index stays at 0
  during pretraining, so the student's stem and heads first train in the search phase);
- every pass sums the loss of all five outputs.

The architecture loss is the search-phase loss plus, for each architecture with a positive
latency weight, ``weight * latency_fn(supernet, arch)``: the latency model is a callable so the
search never depends on how it is computed (lookup table, decoupled terms, ...). Updates are
first order: the weights are not unrolled. In a process group (``torchrun``) each process
passes its slice of the batch and the steps are the single-process steps on the whole batch
(see :mod:`fasterseg.distributed`).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from fasterseg.distributed import global_sum, sum_gradients, world_size
from fasterseg.space.supernet import Supernet

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# (supernet, architecture name) -> differentiable latency in milliseconds.
LatencyFn = Callable[[Supernet, str], torch.Tensor]


def _all_outputs(net: Supernet, criterion: Criterion, images: torch.Tensor, target: torch.Tensor,
                 arch: str, widths: str) -> torch.Tensor:
    return sum(criterion(logits, target) for logits in net(images, arch, widths))


def autocast_for(images: torch.Tensor, dtype: torch.dtype | None):
    """bf16/fp16 autocast of the supernet's passes on the images' device; ``None``: fp32."""
    return torch.autocast(images.device.type, dtype=dtype) if dtype is not None else nullcontext()


def supernet_loss(net: Supernet, criterion: Criterion, images: torch.Tensor, target: torch.Tensor,
                  pretrain: bool, every_arch: bool = False) -> torch.Tensor:
    """The weight loss of one batch (see the module docstring for which passes it sums).

    ``every_arch`` (pretraining only; not the paper's): each further architecture adds one
    random-width pass, so its own stem and heads have trained when the search phase starts
    (with the paper's rule the student's begin from their initial weights there)."""
    archs = [a.name for a in net.cfg.archs]
    loss = images.new_zeros(())
    if not pretrain:
        for arch in archs:
            loss = loss + _all_outputs(net, criterion, images, target, arch, "arch")
    elif every_arch:
        for arch in archs[1:]:
            loss = loss + _all_outputs(net, criterion, images, target, arch, "random")
    sandwich = archs[0] if pretrain else archs[-1]
    if len(net.cfg.width_choices) > 1:
        for mode in ("max", "min") + (("random", "random") if pretrain else ()):
            loss = loss + _all_outputs(net, criterion, images, target, sandwich, mode)
    elif pretrain:
        loss = loss + _all_outputs(net, criterion, images, target, sandwich, "max")
    return loss


@dataclass
class Optimisers:
    """SGD (or Adam) on the weights; one Adam per architecture on its parameters (no weight decay)."""

    weights: torch.optim.Optimizer
    archs: dict[str, torch.optim.Optimizer] = field(default_factory=dict)


def make_optimisers(net: Supernet, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                    arch_lr: float = 3e-4, arch_betas: tuple[float, float] = (0.5, 0.999),
                    optimizer: str = "sgd") -> Optimisers:
    """``optimizer`` picks the weights' optimiser: sgd (the paper's) or adam (``momentum`` is its
    beta1), which the from-scratch CamVid recipes train with."""
    if optimizer == "sgd":
        weights = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    elif optimizer == "adam":
        weights = torch.optim.Adam(net.weight_parameters(), lr=lr, betas=(momentum, 0.999), weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer: must be sgd or adam, got {optimizer!r}")
    archs = {name: torch.optim.Adam(net.arch_parameters(name), lr=arch_lr, betas=arch_betas) for name in net.arch}
    return Optimisers(weights, archs)


@dataclass
class StepResult:
    weight_loss: float
    arch_loss: float | None = None
    latency: dict[str, float] = field(default_factory=dict)


def arch_step(net: Supernet, opt: Optimisers, criterion: Criterion, images: torch.Tensor, target: torch.Tensor,
              latency_fn: LatencyFn | None, latency_weights: dict[str, float],
              amp_dtype: torch.dtype | None = None) -> tuple[float, dict[str, float]]:
    """Update every architecture's parameters on a batch of the architecture half."""
    weighted = {arch: w for arch, w in latency_weights.items() if w > 0}
    if weighted and latency_fn is None:
        raise ValueError(f"latency weights {weighted} are positive but no latency function was given")
    for o in opt.archs.values():
        o.zero_grad(set_to_none=True)
    with autocast_for(images, amp_dtype):
        loss = supernet_loss(net, criterion, images, target, pretrain=False)
    latencies: dict[str, float] = {}
    for arch, weight in weighted.items():
        latency = latency_fn(net, arch)
        latencies[arch] = float(latency.detach())
        loss = loss + weight * latency / world_size()  # every process adds it; counted once in total
    loss.backward()
    sum_gradients(net.arch_parameters())
    for o in opt.archs.values():
        o.step()
    return float(global_sum(loss.detach())), latencies


def weight_step(net: Supernet, opt: Optimisers, criterion: Criterion, images: torch.Tensor, target: torch.Tensor,
                pretrain: bool, grad_clip: float, amp_dtype: torch.dtype | None = None, every_arch: bool = False) -> float:
    """Update the weights on a batch of the weight half (gradient norm clipped)."""
    net.zero_grad(set_to_none=True)
    with autocast_for(images, amp_dtype):
        loss = supernet_loss(net, criterion, images, target, pretrain, every_arch)
    loss.backward()
    params = list(net.parameters())
    sum_gradients(params)
    # The official clip runs over all parameters, architecture gradients included.
    nn.utils.clip_grad_norm_(params, grad_clip)
    opt.weights.step()
    net.zero_grad(set_to_none=True)
    return float(global_sum(loss.detach()))


def search_step(net: Supernet, opt: Optimisers, criterion: Criterion,
                weight_batch: Sequence[torch.Tensor], arch_batch: Sequence[torch.Tensor] | None,
                pretrain: bool, grad_clip: float = 5.0, latency_fn: LatencyFn | None = None,
                latency_weights: dict[str, float] | None = None, amp_dtype: torch.dtype | None = None,
                every_arch: bool = False) -> StepResult:
    """One iteration: the architecture step first (unless pretraining), then the weight step;
    the supernet's passes under ``amp_dtype`` autocast when given (the latency term stays fp32)."""
    net.train()
    result = StepResult(weight_loss=0.0)
    if not pretrain:
        if arch_batch is None:
            raise ValueError("the search phase needs a batch from the architecture half")
        result.arch_loss, result.latency = arch_step(
            net, opt, criterion, arch_batch[0], arch_batch[1], latency_fn, latency_weights or {}, amp_dtype
        )
    result.weight_loss = weight_step(net, opt, criterion, weight_batch[0], weight_batch[1], pretrain, grad_clip, amp_dtype,
                                     every_arch)
    return result
