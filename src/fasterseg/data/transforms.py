"""Paired (image, label) transforms for training and evaluation, in torch.

Randomness comes from an explicit ``torch.Generator`` per sample (seeded from the run seed, the
epoch and the sample index), so a sample is augmented identically whichever worker or process
loads it: this is what makes resumed and multi-process runs reproduce single-process ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fasterseg.data.base import IGNORE_INDEX

# The normalisation every FasterSeg network is trained with (ImageNet statistics).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensors(image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 HWC image -> float CHW in [0, 1]; label -> int64 HW."""
    img = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float().div_(255.0)
    lab = torch.from_numpy(np.asarray(label).astype(np.int64))
    return img, lab


def normalize(img: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.as_tensor(mean, dtype=img.dtype, device=img.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=img.dtype, device=img.device).view(-1, 1, 1)
    return (img - m) / s


def resize_pair(img: torch.Tensor, lab: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]
    lab = F.interpolate(lab[None, None].float(), size=size, mode="nearest")[0, 0].long()
    return img, lab


@dataclass
class TrainTransform:
    """Random scale, pad (image 0 after normalisation, label ignore) and crop, flip, normalise."""

    crop_size: tuple[int, int]
    scales: tuple[float, ...] = (0.75, 1.0, 1.25)
    flip: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    base_scale: float = 1.0  # e.g. 0.5 to train on 2x-downsampled images
    ignore_index: int = IGNORE_INDEX

    def __call__(self, image: np.ndarray, label: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        img, lab = to_tensors(image, label)
        scale = self.base_scale * self.scales[int(torch.randint(len(self.scales), (1,), generator=generator))]
        if scale != 1.0:
            h, w = img.shape[1:]
            img, lab = resize_pair(img, lab, (max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))))
        img = normalize(img, self.mean, self.std)
        ch, cw = self.crop_size
        h, w = img.shape[1:]
        pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
        if pad_h or pad_w:
            img = F.pad(img, (0, pad_w, 0, pad_h), value=0.0)
            lab = F.pad(lab, (0, pad_w, 0, pad_h), value=self.ignore_index)
            h, w = img.shape[1:]
        top = int(torch.randint(h - ch + 1, (1,), generator=generator))
        left = int(torch.randint(w - cw + 1, (1,), generator=generator))
        img = img[:, top: top + ch, left: left + cw]
        lab = lab[top: top + ch, left: left + cw]
        if self.flip and bool(torch.rand((1,), generator=generator) < 0.5):
            img, lab = img.flip(-1), lab.flip(-1)
        return img.contiguous(), lab.contiguous()


@dataclass
class EvalTransform:
    """Normalise only (optionally rescale the image; the label stays at full size)."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    scale: float = 1.0

    def __call__(self, image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        img, lab = to_tensors(image, label)
        if self.scale != 1.0:
            h, w = img.shape[1:]
            img = F.interpolate(img[None], size=(int(h * self.scale + 0.5), int(w * self.scale + 0.5)),
                                mode="bilinear", align_corners=False)[0]
        return normalize(img, self.mean, self.std), lab
