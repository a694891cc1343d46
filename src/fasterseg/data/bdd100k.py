"""BDD100K semantic segmentation: ``images/10k/{split}/*.jpg`` with ``labels/sem_seg/masks/{split}/*.png``.

The masks already hold the 19 Cityscapes train ids (255 ignored), so no table is needed beyond
a check that every value is one of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fasterseg.data.base import IGNORE_INDEX, DatasetInfo, PairedFileDataset, PairTransform, read_label
from fasterseg.errors import DatasetError
from fasterseg.data.labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE

BDD100K_INFO = DatasetInfo(name="bdd100k", class_names=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class _TrainIdDataset(PairedFileDataset):
    """Labels stored as train ids: a value that is neither a class nor ignore is an error."""

    def load_label(self, index: int) -> np.ndarray:
        path = self.pairs[index][1]
        raw = read_label(path)
        n = self.info.num_classes
        bad = (raw >= n) & (raw != self.info.ignore_index)
        if bad.any():
            raise DatasetError(f"{path}: label value {int(raw[bad][0])} is neither a class (0..{n - 1}) "
                               f"nor ignore ({self.info.ignore_index})")
        return raw.astype(np.uint8) if raw.dtype != np.uint8 else raw


def bdd100k(root: str | Path, split: str, transform: PairTransform | None = None) -> PairedFileDataset:
    root = Path(root)
    image_dir, mask_dir = root / "images" / "10k" / split, root / "labels" / "sem_seg" / "masks" / split
    for d in (image_dir, mask_dir):
        if not d.is_dir():
            raise DatasetError(f"{d}: no such folder (BDD100K layout: images/10k/{split}, labels/sem_seg/masks/{split})")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    pairs = []
    for image in images:
        mask = mask_dir / f"{image.stem}.png"
        if not mask.is_file():
            raise DatasetError(f"{image}: its mask {mask} does not exist")
        pairs.append((image, mask))
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    table[: len(CITYSCAPES_CLASSES)] = np.arange(len(CITYSCAPES_CLASSES))
    return _TrainIdDataset(BDD100K_INFO, pairs, table, transform, source=str(image_dir))
