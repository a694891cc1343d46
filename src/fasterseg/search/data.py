"""Search batches: the official search's augmentation, and the training split cut in halves.

The official search first shrinks every image (``downsample``, 2 for Cityscapes), then flips,
rescales by a random factor, normalises, crops (padding with 0 / ignore where the image is
smaller) and shrinks the label to the network's 1/8 output, where the search losses live.
One half of the (shuffled) training split updates the weights, the other the architecture.

Its pieces (tensors, resize, normalisation) are training's (``data.transforms``); the order of
its random draws (flip, scale, crop) and the label at 1/8 are the official search's, unlike
training's (scale, crop, flip, photometric), so it stays a transform of its own: folding the two
into one would change the crops either a search or a training run draws for a given seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from fasterseg.errors import ConfigError
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Subset

from fasterseg.data.base import IGNORE_INDEX
from fasterseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize, resize_label, resize_pair, to_tensors


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
        img, lab = to_tensors(image, label)
        h, w = img.shape[1:]
        if self.downsample > 1:
            img, lab = resize_pair(img, lab, (h // self.downsample, w // self.downsample))
        if torch.rand((), generator=g) < 0.5:
            img, lab = img.flip(-1), lab.flip(-1)
        scale = self.scales[int(torch.randint(len(self.scales), (), generator=g))]
        img, lab = resize_pair(img, lab, (int(img.shape[1] * scale), int(img.shape[2] * scale)))
        img = normalize(img, self.mean, self.std)
        ch, cw = self.crop
        pad_h, pad_w = max(ch - img.shape[1], 0), max(cw - img.shape[2], 0)
        if pad_h or pad_w:
            img = F.pad(img, (0, pad_w, 0, pad_h), value=0.0)
            lab = F.pad(lab, (0, pad_w, 0, pad_h), value=self.ignore_index)
        top = int(torch.randint(img.shape[1] - ch + 1, (), generator=g))
        left = int(torch.randint(img.shape[2] - cw + 1, (), generator=g))
        img = img[:, top: top + ch, left: left + cw]
        lab = lab[top: top + ch, left: left + cw]
        lab = resize_label(lab, (ch // self.label_stride, cw // self.label_stride))
        return img.contiguous(), lab


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
    """Each global batch of a batch sampler after the first ``skip``, cut to this process's
    contiguous share (the skipped ones are drawn, not loaded, so the order is unchanged)."""

    def __init__(self, batches, rank: int, world: int, skip: int = 0):
        self.batches, self.rank, self.world, self.skip = batches, rank, world, skip

    def __len__(self) -> int:
        return max(len(self.batches) - self.skip, 0)

    def __iter__(self):
        for i, batch in enumerate(self.batches):
            if i < self.skip:
                continue
            share = len(batch) // self.world
            yield batch[self.rank * share: (self.rank + 1) * share]


def split_halves(n: int, seed: int) -> tuple[list[int], list[int]]:
    """A seeded shuffle of ``range(n)`` cut in two: (weight half, architecture half)."""
    if n < 2:
        raise ValueError(f"the training split needs at least 2 samples to be halved, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return perm[: n // 2], perm[n // 2:]


def half_loader(dataset, indices: Sequence[int], batch_size: int, num_batches: int, seed: int,
                num_workers: int = 0, rank: int = 0, world: int = 1, skip: int = 0) -> DataLoader:
    """``num_batches`` shuffled global batches from ``indices``, cycling through them as often as
    needed; with ``world`` processes each gets its contiguous share of every global batch.
    ``skip`` leaves out the first batches (an epoch resumed after that many steps)."""
    subset = Subset(dataset, list(indices))
    if len(subset) < batch_size:
        raise ConfigError(f"batch_size: a half of the training split has {len(subset)} samples, too few for a batch of {batch_size}")
    if batch_size % world:
        raise ValueError(f"a batch of {batch_size} cannot be shared equally by {world} processes")
    sampler = RandomSampler(subset, replacement=False, num_samples=batch_size * num_batches,
                            generator=torch.Generator().manual_seed(seed))
    batches = _RankSlices(BatchSampler(sampler, batch_size, drop_last=True), rank, world, skip)
    return DataLoader(subset, batch_sampler=batches, num_workers=num_workers)
