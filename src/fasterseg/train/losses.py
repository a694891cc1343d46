"""Losses of the FasterSeg recipe: online hard example mining CE and KL distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fasterseg.data.base import IGNORE_INDEX


def ohem_cross_entropy(logits: torch.Tensor, target: torch.Tensor, thresh: float = 0.7, min_kept: int = 0,
                       ignore_index: int = IGNORE_INDEX, across_processes: bool = False) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (N, C, H, W) over the hard pixels of ``target`` (N, H, W).

    A pixel is hard when the probability of its true class is at most ``thresh``; if fewer than
    ``min_kept`` pixels are that hard, the threshold rises to the ``min_kept``-th smallest
    probability. Ignored pixels rank as solved (probability 1), as in the official
    ``ProbOhemCrossEntropy2d``; ``min_kept <= 0`` or more than the valid pixels turns mining off
    (plain cross-entropy over the valid pixels), as there too. With no valid pixel the loss is a
    zero that still belongs to the graph (the official one is NaN).

    ``across_processes``: each process holds a slice of one batch and ``min_kept`` counts the
    whole batch, so ranks and means are global and the gradients summed over processes are the
    single-process ones (the search). Without it every process mines its own slice (DDP training,
    which averages gradients).
    """
    from fasterseg.search.distributed import gather_cat, global_sum, is_distributed

    if logits.dim() != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"logits (N, C, H, W) and target (N, H, W) must agree, got {tuple(logits.shape)} "
                         f"and {tuple(target.shape)}")
    group = across_processes and is_distributed()
    total = global_sum if group else (lambda t: t)
    target = target.long()
    valid = target != ignore_index
    num_valid = int(total(valid.sum()))
    if num_valid == 0:
        return logits.sum() * 0.0
    if 0 < min_kept <= num_valid:
        with torch.no_grad():
            safe = target.masked_fill(~valid, 0)
            prob = logits.detach().float().softmax(dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
            prob = prob.masked_fill(~valid, 1.0).flatten()
            everyone = gather_cat(prob) if group else prob
            kth = everyone.kthvalue(min(everyone.numel(), min_kept)).values
            threshold = torch.clamp(kth, min=thresh)
            target = target.masked_fill(~(valid & (prob <= threshold).view_as(valid)), ignore_index)
    if not group:
        return F.cross_entropy(logits, target, ignore_index=ignore_index)
    kept = global_sum((target != ignore_index).sum()).clamp(min=1)
    return F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum") / kept


class OhemCrossEntropy(nn.Module):
    """OHEM of each process's batch (see :func:`ohem_cross_entropy`); ``min_kept`` defaults to
    ``min_kept_ratio`` (the paper: 1/16) of the batch's pixels."""

    def __init__(self, thresh: float = 0.7, min_kept: int | None = None, min_kept_ratio: float = 1 / 16,
                 ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.thresh = thresh
        self.min_kept = min_kept
        self.min_kept_ratio = min_kept_ratio
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        min_kept = self.min_kept if self.min_kept is not None else int(target.numel() * self.min_kept_ratio)
        return ohem_cross_entropy(logits, target, self.thresh, min_kept, self.ignore_index)


def distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of the per-pixel class distributions, averaged over all elements
    (classes included), as the official recipe does with ``nn.KLDivLoss()``."""
    kl = F.kl_div(F.log_softmax(student_logits.float(), dim=1), F.softmax(teacher_logits.float(), dim=1),
                  reduction="sum")
    return kl / student_logits.numel()


def segmentation_loss(outputs, target: torch.Tensor, criterion: nn.Module, aux_weight: float = 0.2) -> torch.Tensor:
    """OHEM on the 1/8 prediction plus ``aux_weight`` times each auxiliary head's."""
    pred8, pred16, pred32 = outputs
    loss = criterion(pred8, target)
    for aux in (pred16, pred32):
        if aux is not None:
            loss = loss + aux_weight * criterion(aux, target)
    return loss
