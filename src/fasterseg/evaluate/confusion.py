"""A streaming confusion matrix on the predictions' device: one ``bincount`` per batch."""

from __future__ import annotations

import torch

from fasterseg.distributed import sum_in_place


def _as_index(x: torch.Tensor) -> torch.Tensor:
    """int32 is enough for indices below 2**31 and halves the memory traffic of int64."""
    return x if x.dtype in (torch.int16, torch.int32, torch.int64) else x.to(torch.int32)


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
        """Count one batch: a single ``bincount`` over ``target * num_pred + pred``.

        Ignored pixels are counted too (in a row past the classes) and dropped afterwards, and
        the ground-truth range is checked on the histogram, so the pixels are read only once.
        """
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != ground truth shape {tuple(target.shape)}")
        n, m = self.num_classes, self.num_pred
        target = _as_index(target.to(self.mat.device).reshape(-1))
        pred = _as_index(pred.to(self.mat.device).reshape(-1))
        if not target.numel():
            return
        t_lo, t_hi = (int(v) for v in torch.aminmax(target))
        p_lo, p_hi = (int(v) for v in torch.aminmax(pred))
        if t_lo < 0:
            raise ValueError(f"ground truth value {t_lo} outside 0..{n - 1} (ignore {self.ignore_index})")
        if p_lo < 0 or p_hi >= m:  # allowed only under ignored pixels, which are not scored
            bad = ((pred < 0) | (pred >= m)) & (target != self.ignore_index)
            if bool(bad.any()):
                raise ValueError(f"predicted value {int(pred[bad][0])} outside 0..{m - 1}")
            pred = pred.clamp(0, m - 1)
        rows = max(n, t_hi + 1)
        if rows * m <= torch.iinfo(torch.int16).max:  # small tables: half the memory traffic again
            target, pred = target.to(torch.int16), pred.to(torch.int16)
        hist = torch.bincount(target * m + pred, minlength=rows * m).reshape(rows, m)
        if rows > n:
            extra = hist[n:].sum(1)
            k = self.ignore_index - n
            if 0 <= k < len(extra):
                extra[k] = 0
            if bool((extra > 0).any()):
                bad = n + int(extra.nonzero()[0])
                raise ValueError(f"ground truth value {bad} outside 0..{n - 1} (ignore {self.ignore_index})")
        self.mat += hist[:n]

    def all_reduce(self) -> None:
        """Sum over processes when running distributed (a no-op otherwise)."""
        sum_in_place(self.mat)

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
