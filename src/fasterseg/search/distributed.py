"""Data-parallel search on several processes that computes what one process computes.

Each process holds a slice of the global batch. For the result to be the single-process
result on the whole batch, every statistic over the batch must be global:

- batch norm: :class:`GlobalBatchNorm2d` normalises with the mean and variance of the global
  batch (sums all-reduced, differentiably);
- OHEM: the k-th smallest probability and the number of kept pixels are global (see
  :func:`fasterseg.search.loss.ohem_cross_entropy`);
- gradients are summed over processes (each process's loss is already divided by global counts);
- random choices (Gumbel widths, random widths) draw from the same seeded stream everywhere,
  and terms that do not depend on the data (latency) are counted once.

With one process (no process group) every function here is the plain single-process one.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def init_from_env() -> bool:
    """Join the process group that ``torchrun`` describes in the environment (gloo on CPU,
    nccl on GPUs); returns whether there is more than one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return is_distributed()


def global_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over processes; gradients flow back to every process's contribution."""
    if not is_distributed():
        return t
    import warnings

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
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean.detach())
            self.running_var.mul_(1 - m).add_(m * var.detach() * count / (count - 1))
            self.num_batches_tracked.add_(1)
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
