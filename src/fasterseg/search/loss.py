"""The search's OHEM criterion: the recipe's OHEM over the global batch of all processes.

Ranks and means are global (``across_processes``), so a search on several processes computes
what one process computes on the whole batch; see :func:`fasterseg.train.losses.ohem_cross_entropy`.
"""

from __future__ import annotations

import torch

from fasterseg.data.base import IGNORE_INDEX
from fasterseg.search.distributed import world_size
from fasterseg.train.losses import ohem_cross_entropy


class OhemCrossEntropy:
    """OHEM with ``min_kept`` a fraction of the global batch's label pixels (the paper: 1/16)."""

    def __init__(self, thresh: float = 0.7, min_kept_fraction: float = 1 / 16, ignore_index: int = IGNORE_INDEX):
        self.thresh = thresh
        self.min_kept_fraction = min_kept_fraction
        self.ignore_index = ignore_index

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        min_kept = int(target.numel() * world_size() * self.min_kept_fraction)
        return ohem_cross_entropy(logits, target, self.thresh, min_kept, self.ignore_index, across_processes=True)
