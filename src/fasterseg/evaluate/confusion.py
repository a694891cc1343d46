"""A streaming confusion matrix on the predictions' device: one ``bincount`` per batch."""

from __future__ import annotations

import torch


class ConfusionMatrix:
    """Rows: ground truth, columns: prediction. Pixels labelled ``ignore_index`` are not counted.

    ``num_pred`` (default ``num_classes``) allows extra prediction columns after the classes:
    predictions that are valid but no class (the Cityscapes evaluator keeps ignored label ids
    apart, because the official numbers treat them differently from each other). Every metric
    derives from the matrix; extra columns count as false negatives of the ground-truth class.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, device: str | torch.device = "cpu",
                 num_pred: int | None = None):
        self.num_classes = num_classes
        self.num_pred = num_classes if num_pred is None else num_pred
        if self.num_pred < num_classes:
            raise ValueError(f"num_pred ({self.num_pred}) must be at least num_classes ({num_classes})")
        self.ignore_index = ignore_index
        self.mat = torch.zeros(num_classes, self.num_pred, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != ground truth shape {tuple(target.shape)}")
        n, m = self.num_classes, self.num_pred
        target = target.to(self.mat.device).reshape(-1).long()
        pred = pred.to(self.mat.device).reshape(-1).long()
        ignored = target == self.ignore_index
        if target.numel():
            bad = (target < 0) | ((target >= n) & ~ignored)
            if bool(bad.any()):
                raise ValueError(f"ground truth value {int(target[bad][0])} outside 0..{n - 1} (ignore {self.ignore_index})")
            bad = ((pred < 0) | (pred >= m)) & ~ignored
            if bool(bad.any()):
                raise ValueError(f"predicted value {int(pred[bad][0])} outside 0..{m - 1}")
        # ignored pixels land in one overflow bin past the matrix, so no masked copy is needed
        index = torch.where(ignored, n * m, target * m + pred)
        self.mat += torch.bincount(index, minlength=n * m + 1)[: n * m].reshape(n, m)

    def reset(self) -> None:
        self.mat.zero_()

    def all_reduce(self) -> None:
        """Sum over processes when running distributed (a no-op otherwise)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.mat)

    def iou(self) -> torch.Tensor:
        """Per-class IoU; NaN for classes absent from both prediction and ground truth."""
        m = self.mat.double()
        n = self.num_classes
        tp = m[:, :n].diag()
        denom = m[:, :n].sum(0) + m.sum(1) - tp
        return torch.where(denom > 0, tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))

    def miou(self) -> float:
        return float(torch.nanmean(self.iou()))

    def pixel_accuracy(self) -> float:
        m = self.mat.double()
        return float(m[:, : self.num_classes].diag().sum() / m.sum().clamp(min=1))

    def class_accuracy(self) -> torch.Tensor:
        m = self.mat.double()
        gt = m.sum(1)
        tp = m[:, : self.num_classes].diag()
        return torch.where(gt > 0, tp / gt.clamp(min=1), torch.full_like(gt, float("nan")))

    def mean_accuracy(self) -> float:
        return float(torch.nanmean(self.class_accuracy()))
