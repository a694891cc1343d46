"""Running on several processes (``torchrun``): the one place that joins and talks to the group.

Everything comes from ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; with one process (no group)
every function here is the plain single-process one, so callers never branch on it.

Two ways of sharing a batch use these pieces:

- training (DDP) averages gradients; each process mines and normalises its own slice;
- the search computes exactly what one process computes on the whole batch: batch-norm
  statistics (:class:`GlobalBatchNorm2d`), OHEM ranks and counts (``across_processes`` in
  :func:`fasterseg.losses.ohem_cross_entropy`) are global, each loss is divided by global counts
  and the gradients are summed (:func:`sum_gradients`); random choices draw from the same seeded
  stream everywhere and data-independent terms (latency) are counted once.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the group (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group ``torchrun`` described in the environment: NCCL when the work runs
    on CUDA (this process's GPU is ``LOCAL_RANK``), gloo otherwise; one process without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return info


def launched_rank() -> int:
    """The rank ``torchrun`` gave this process (0 without it), readable before the group is
    joined and after it is left: what a command checks before it reports."""
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def sum_in_place(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over processes in place (counts, confusion matrices; no gradient)."""
    if is_distributed():
        dist.all_reduce(t)
    return t


def sum_array_in_place(a: np.ndarray) -> np.ndarray:
    """Sum a host array over processes in place (counts kept in NumPy, such as confusion
    matrices); it travels through the group's device (NCCL needs a GPU tensor)."""
    if is_distributed():
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        t = torch.from_numpy(np.ascontiguousarray(a)).to(device)
        dist.all_reduce(t)
        a[...] = t.cpu().numpy()
    return a


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean over processes, as a new tensor."""
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value)
        value /= info.world_size
    return value


def global_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over processes; gradients flow back to every process's contribution."""
    if not is_distributed():
        return t
    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():
        # Deprecated in favour of a private module; it is the public autograd-aware all-reduce.
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(t, op=dist.ReduceOp.SUM)


def gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate (dim 0) every process's ``t`` (no gradient); equal shapes required."""
    if not is_distributed():
        return t
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def sum_gradients(params) -> None:
    """Sum the gradients of ``params`` over processes (each loss is divided by global counts)."""
    if not is_distributed():
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the batch across all processes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        c = x.shape[1]
        # Two passes (mean, then squared deviations): E[x^2] - E[x]^2 loses digits.
        total = global_sum(torch.cat([x.sum((0, 2, 3)), x.new_full((1,), x.numel() / c)]))
        count = total[-1]
        mean = total[:c] / count
        var = global_sum((x - mean[None, :, None, None]).square().sum((0, 2, 3))) / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            # momentum None: a plain average over the batches seen (as nn.BatchNorm2d does)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(m * mean.detach())
            self.running_var.mul_(1 - m).add_(m * var.detach() * count / (count - 1))
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * self.weight
        out = (x - mean[None, :, None, None]) * scale[None, :, None, None]
        return out + self.bias[None, :, None, None] if self.affine else out


def globalise_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` inside ``module`` by a :class:`GlobalBatchNorm2d` with the
    same state (names and values unchanged)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats, device=child.weight.device, dtype=child.weight.dtype)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            globalise_batchnorm(child)
    return module
