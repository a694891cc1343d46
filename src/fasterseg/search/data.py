"""Search batches: the official search's augmentation, and the training split cut in halves.

The official search first shrinks every image (``downsample``, 2 for Cityscapes), then flips,
rescales by a random factor, normalises, crops (padding with 0 / ignore where the image is
smaller) and shrinks the label to the network's 1/8 output, where the search losses live.
One half of the (shuffled) training split updates the weights, the other the architecture.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from fasterseg.errors import ConfigError
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Subset

from fasterseg.data.base import IGNORE_INDEX
from fasterseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize


def _resize(x: torch.Tensor, size: tuple[int, int], label: bool) -> torch.Tensor:
    if label:
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class SearchTransform:
    """(uint8 image HxWx3, label HxW) -> (float image 3 x crop, long label crop / label_stride)."""

    def __init__(self, crop: Sequence[int], scales: Sequence[float] = (0.75, 1.0, 1.25), downsample: int = 2,
                 label_stride: int = 8, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 ignore_index: int = IGNORE_INDEX):
        if len(crop) != 2 or any(c % label_stride for c in crop):
            raise ValueError(f"crop must be (height, width), multiples of {label_stride}, got {list(crop)}")
        self.crop = (int(crop[0]), int(crop[1]))
        self.scales = tuple(scales)
        self.downsample = downsample
        self.label_stride = label_stride
        self.mean, self.std = tuple(mean), tuple(std)
        self.ignore_index = ignore_index

    def __call__(self, image: np.ndarray, label: np.ndarray,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        g = generator
        img = torch.tensor(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
        lab = torch.tensor(np.asarray(label, dtype=np.float32))[None, None]
        h, w = img.shape[2:]
        if self.downsample > 1:
            size = (h // self.downsample, w // self.downsample)
            img, lab = _resize(img, size, False), _resize(lab, size, True)
        if torch.rand((), generator=g) < 0.5:
            img, lab = img.flip(-1), lab.flip(-1)
        scale = self.scales[int(torch.randint(len(self.scales), (), generator=g))]
        size = (int(img.shape[2] * scale), int(img.shape[3] * scale))
        img, lab = _resize(img, size, False), _resize(lab, size, True)
        img = normalize(img / 255.0, self.mean, self.std)
        ch, cw = self.crop
        pad_h, pad_w = max(ch - img.shape[2], 0), max(cw - img.shape[3], 0)
        if pad_h or pad_w:
            img = F.pad(img, (0, pad_w, 0, pad_h), value=0.0)
            lab = F.pad(lab, (0, pad_w, 0, pad_h), value=float(self.ignore_index))
        top = int(torch.randint(img.shape[2] - ch + 1, (), generator=g))
        left = int(torch.randint(img.shape[3] - cw + 1, (), generator=g))
        img = img[:, :, top: top + ch, left: left + cw]
        lab = lab[:, :, top: top + ch, left: left + cw]
        lab = _resize(lab, (ch // self.label_stride, cw // self.label_stride), True)
        return img[0].contiguous(), lab[0, 0].long()


class Augmented(torch.utils.data.Dataset):
    """``dataset`` (untransformed pairs) through ``transform``, whose random choices for sample
    ``i`` in epoch ``e`` depend on (seed, e, i) only: the same crops whichever process or
    worker loads the sample, and the global random stream (Gumbel widths) is left alone."""

    def __init__(self, dataset, transform: SearchTransform, seed: int):
        self.dataset, self.transform, self.seed = dataset, transform, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index]
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_003 + index)
        return self.transform(image, label, g)


class _RankSlices:
    """Each global batch of a batch sampler, cut to this process's contiguous share."""

    def __init__(self, batches, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            share = len(batch) // self.world
            yield batch[self.rank * share: (self.rank + 1) * share]


def split_halves(n: int, seed: int) -> tuple[list[int], list[int]]:
    """A seeded shuffle of ``range(n)`` cut in two: (weight half, architecture half)."""
    if n < 2:
        raise ValueError(f"the training split needs at least 2 samples to be halved, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return perm[: n // 2], perm[n // 2:]


def half_loader(dataset, indices: Sequence[int], batch_size: int, num_batches: int, seed: int,
                num_workers: int = 0, rank: int = 0, world: int = 1) -> DataLoader:
    """``num_batches`` shuffled global batches from ``indices``, cycling through them as often as
    needed; with ``world`` processes each gets its contiguous share of every global batch."""
    subset = Subset(dataset, list(indices))
    if len(subset) < batch_size:
        raise ConfigError(f"batch_size: a half of the training split has {len(subset)} samples, too few for a batch of {batch_size}")
    if batch_size % world:
        raise ValueError(f"a batch of {batch_size} cannot be shared equally by {world} processes")
    sampler = RandomSampler(subset, replacement=False, num_samples=batch_size * num_batches,
                            generator=torch.Generator().manual_seed(seed))
    batches = _RankSlices(BatchSampler(sampler, batch_size, drop_last=True), rank, world)
    return DataLoader(subset, batch_sampler=batches, num_workers=num_workers)
