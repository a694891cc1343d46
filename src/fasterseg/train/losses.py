"""Losses of the FasterSeg recipe: online hard example mining CE and KL distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OhemCrossEntropy(nn.Module):
    """Cross-entropy over the hard pixels only.

    A pixel is hard when the probability of its true class is at most ``thresh``; if fewer than
    ``min_kept`` pixels are that hard, the threshold rises to the ``min_kept``-th smallest
    probability so at least that many pixels always contribute (the official rule).
    ``min_kept`` is per batch; ``min_kept_ratio`` sets it as a fraction of the batch's pixels
    (the paper: 1/16) when ``min_kept`` is None.
    """

    def __init__(self, thresh: float = 0.7, min_kept: int | None = None, min_kept_ratio: float = 1 / 16,
                 ignore_index: int = 255):
        super().__init__()
        self.thresh = thresh
        self.min_kept = min_kept
        self.min_kept_ratio = min_kept_ratio
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n, c, h, w = logits.shape
        min_kept = self.min_kept if self.min_kept is not None else int(n * h * w * self.min_kept_ratio)
        flat_target = target.reshape(-1)
        valid = flat_target != self.ignore_index
        num_valid = int(valid.sum())
        if num_valid == 0:
            return logits.sum() * 0.0
        target_kept = flat_target.clone()
        if min_kept <= num_valid:
            with torch.no_grad():
                prob = F.softmax(logits.float(), dim=1).permute(1, 0, 2, 3).reshape(c, -1)
                safe_target = torch.where(valid, flat_target, torch.zeros_like(flat_target))
                true_prob = prob.gather(0, safe_target[None]).squeeze(0)
                true_prob = torch.where(valid, true_prob, torch.ones_like(true_prob))
                threshold = torch.tensor(self.thresh, device=logits.device, dtype=true_prob.dtype)
                if min_kept > 0:
                    kth = torch.kthvalue(true_prob, min(min_kept, true_prob.numel())).values
                    threshold = torch.maximum(threshold, kth)
                hard = true_prob <= threshold
            target_kept = torch.where(valid & hard, flat_target, torch.full_like(flat_target, self.ignore_index))
        return F.cross_entropy(logits, target_kept.view(n, h, w), ignore_index=self.ignore_index)


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
