"""Mixing two training crops of a batch (``data.mix``): a regulariser against the scene layouts
of a few recorded drives.

A CamVid network trained on two sequences scores 79 mIoU on its training frames and 42 on a third
sequence (docs/benchmarks.md): the gap is generalisation, not fitting. Pasting part of one crop
into another, image and labels alike, shows the network objects in contexts its training drives
never had:

- ``cutmix`` (Yun et al. 2019): a rectangle of the partner crop, its area a uniform fraction of
  the crop;
- ``classmix`` (Olsson et al. 2021): every pixel of half of the classes present in the partner
  crop (at least one), so whole objects move with their outlines.

Each crop of the batch is mixed with probability ``prob`` with the next crop (the batch rolled by
one), always from the unmixed batch. The draws come from a generator seeded by the run's seed, the
epoch and the iteration, so a resumed run mixes as the uninterrupted one did; several processes
mix within their own share of the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fasterseg.data.base import IGNORE_INDEX

MIX_MODES = ("none", "cutmix", "classmix")


@dataclass(frozen=True)
class BatchMix:
    mode: str = "none"  # MIX_MODES
    prob: float = 0.5  # chance that a crop receives a paste
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if self.mode not in MIX_MODES:
            raise ValueError(f"data.mix must be one of {list(MIX_MODES)}, got {self.mode!r}")
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"data.mix_prob must be in [0, 1], got {self.prob}")

    @property
    def enabled(self) -> bool:
        return self.mode != "none" and self.prob > 0

    def __call__(self, img: torch.Tensor, lab: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) images and (N, H, W) labels -> the mixed batch (new tensors; the inputs are kept)."""
        n = img.shape[0]
        if not self.enabled or n < 2:
            return img, lab
        mixed_img, mixed_lab = img.clone(), lab.clone()
        for i in range(n):
            u = torch.rand(3, generator=generator).tolist()  # fixed-size draws: whether, and the mask's
            if u[0] >= self.prob:
                continue
            j = (i + 1) % n
            mask = self._box(lab.shape[1:], u[1], generator) if self.mode == "cutmix" else self._classes(lab[j], generator)
            mixed_img[i] = torch.where(mask, img[j], img[i])
            mixed_lab[i] = torch.where(mask, lab[j], lab[i])
        return mixed_img, mixed_lab

    @staticmethod
    def _box(size: torch.Size, area: float, generator: torch.Generator) -> torch.Tensor:
        """A rectangle covering ``area`` of the crop (its sides in the crop's proportions), placed
        uniformly with its centre inside the crop and clipped to it."""
        h, w = int(size[0]), int(size[1])
        bh, bw = int(round(h * math.sqrt(area))), int(round(w * math.sqrt(area)))
        cy, cx = (int(v) for v in (torch.rand(2, generator=generator) * torch.tensor([h, w])).tolist())
        top, left = cy - bh // 2, cx - bw // 2  # may lie outside the crop: the box is clipped
        mask = torch.zeros(h, w, dtype=torch.bool)
        mask[max(0, top): top + bh, max(0, left): left + bw] = True
        return mask

    def _classes(self, partner: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The pixels of a random half (rounded up) of the classes the partner crop shows."""
        present = partner.unique()
        present = present[present != self.ignore_index]
        if present.numel() == 0:
            return torch.zeros_like(partner, dtype=torch.bool)
        chosen = present[torch.randperm(present.numel(), generator=generator)[: (present.numel() + 1) // 2]]
        return torch.isin(partner, chosen)
