"""Online hard example mining cross-entropy, as the official search and training use it.

Only pixels the network is unsure of (probability of the true class at most ``thresh``)
contribute, but never fewer than ``min_kept``: when too few pixels are that hard, the
threshold rises to the ``min_kept``-th smallest probability. Ignored pixels count as solved
(probability 1) when ranking, exactly as the official ``ProbOhemCrossEntropy2d`` ranks them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fasterseg.data.base import IGNORE_INDEX
from fasterseg.search.distributed import gather_cat, global_sum, is_distributed, world_size


def ohem_cross_entropy(logits: torch.Tensor, target: torch.Tensor, thresh: float = 0.7, min_kept: int = 0,
                       ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy over the kept pixels of ``logits`` (N, C, H, W) against ``target`` (N, H, W).

    ``min_kept <= 0`` or more than the valid pixel count turns mining off (plain cross-entropy
    over the valid pixels), as in the official loss. With no valid pixel at all the loss is a
    zero that still belongs to the graph (the official one is NaN).

    In a process group each process holds a slice of the batch and ``min_kept`` counts the
    global batch: ranks and means are global, so the summed gradients are the single-process ones.
    """
    if logits.dim() != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"logits (N, C, H, W) and target (N, H, W) must agree, got {tuple(logits.shape)} and {tuple(target.shape)}")
    target = target.long()
    valid = target != ignore_index
    num_valid = int(global_sum(valid.sum()))
    if num_valid == 0:
        return logits.sum() * 0.0
    if 0 < min_kept <= num_valid:
        with torch.no_grad():
            safe = target.masked_fill(~valid, 0)
            prob = logits.detach().softmax(dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
            prob = prob.masked_fill(~valid, 1.0)
            everyone = gather_cat(prob.flatten())
            kth = everyone.kthvalue(min(everyone.numel(), min_kept)).values
            threshold = torch.clamp(kth, min=thresh)
            target = target.masked_fill(~(valid & (prob <= threshold)), ignore_index)
    if not is_distributed():
        return F.cross_entropy(logits, target, ignore_index=ignore_index)
    kept = global_sum((target != ignore_index).sum()).clamp(min=1)
    return F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum") / kept


class OhemCrossEntropy:
    """OHEM with ``min_kept`` a fraction of each (global) batch's label pixels (the paper: 1/16)."""

    def __init__(self, thresh: float = 0.7, min_kept_fraction: float = 1 / 16, ignore_index: int = IGNORE_INDEX):
        self.thresh = thresh
        self.min_kept_fraction = min_kept_fraction
        self.ignore_index = ignore_index

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        min_kept = int(target.numel() * world_size() * self.min_kept_fraction)
        return ohem_cross_entropy(logits, target, self.thresh, min_kept, self.ignore_index)
