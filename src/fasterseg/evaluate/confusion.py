"""A streaming confusion matrix on the predictions' device: one ``bincount`` per batch."""

from __future__ import annotations

import torch


class ConfusionMatrix:
    """Rows: ground truth, columns: prediction. Pixels labelled ``ignore_index`` are not counted."""

    def __init__(self, num_classes: int, ignore_index: int = 255, device: str | torch.device = "cpu"):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != ground truth shape {tuple(target.shape)}")
        n = self.num_classes
        target = target.to(self.mat.device).reshape(-1).long()
        pred = pred.to(self.mat.device).reshape(-1).long()
        keep = target != self.ignore_index
        target, pred = target[keep], pred[keep]
        if target.numel() and (int(target.max()) >= n or int(target.min()) < 0):
            raise ValueError(f"ground truth value {int(target.max())} outside 0..{n - 1} (ignore {self.ignore_index})")
        if pred.numel() and (int(pred.max()) >= n or int(pred.min()) < 0):
            raise ValueError(f"predicted value {int(pred.max())} outside 0..{n - 1}")
        self.mat += torch.bincount(target * n + pred, minlength=n * n).reshape(n, n)

    def reset(self) -> None:
        self.mat.zero_()

    def all_reduce(self) -> None:
        """Sum over processes when running distributed (a no-op otherwise)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.mat)

    def iou(self) -> torch.Tensor:
        """Per-class IoU; NaN for classes absent from both prediction and ground truth."""
        m = self.mat.double()
        tp = m.diag()
        denom = m.sum(0) + m.sum(1) - tp
        return torch.where(denom > 0, tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))

    def miou(self) -> float:
        return float(torch.nanmean(self.iou()))

    def pixel_accuracy(self) -> float:
        m = self.mat.double()
        return float(m.diag().sum() / m.sum().clamp(min=1))

    def class_accuracy(self) -> torch.Tensor:
        m = self.mat.double()
        gt = m.sum(1)
        return torch.where(gt > 0, m.diag() / gt.clamp(min=1), torch.full_like(gt, float("nan")))
