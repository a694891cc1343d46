"""Cityscapes read in its own layout: labelIds become train ids on the fly, no preprocessing.

``leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png`` pairs with
``gtFine/{split}/{city}/{stem}_gtFine_labelIds.png`` and ``..._gtFine_instanceIds.png``.
The synthetic street scenes (:mod:`fasterseg.data.synth`) are written in the same layout, so
this reader serves both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fasterseg.data.base import DatasetInfo, PairedFileDataset, PairTransform, read_label
from fasterseg.errors import DatasetError
from fasterseg.data.labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, NUM_LABEL_IDS, id_to_train_table

CITYSCAPES_INFO = DatasetInfo(name="cityscapes", class_names=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE)

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
COLOR_SUFFIX = "_gtFine_color.png"


class CityscapesDataset(PairedFileDataset):
    """Frames of one split with their fine annotations; also exposes label and instance ids."""

    has_instances = True

    def __init__(self, root: str | Path, split: str, transform: PairTransform | None = None,
                 info: DatasetInfo = CITYSCAPES_INFO):
        root = Path(root)
        image_dir = root / "leftImg8bit" / split
        if not image_dir.is_dir():
            raise DatasetError(f"{image_dir}: no such folder (Cityscapes layout: leftImg8bit/{split}/CITY/*{IMAGE_SUFFIX})")
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise DatasetError(f"{image_dir}: the split '{split}' is empty (no */*{IMAGE_SUFFIX})")
        self.root = root
        self.split = split
        self.stems = [p.name[: -len(IMAGE_SUFFIX)] for p in images]
        pairs, self.instance_paths = [], []
        for image, stem in zip(images, self.stems):
            gt = root / "gtFine" / split / image.parent.name
            label, instance = gt / f"{stem}{LABEL_SUFFIX}", gt / f"{stem}{INSTANCE_SUFFIX}"
            if not label.is_file():
                raise DatasetError(f"{image}: its ground truth {label} does not exist")
            pairs.append((image, label))
            self.instance_paths.append(instance)
        super().__init__(info, pairs, id_to_train_table(), transform, source=str(image_dir))

    def name(self, index: int) -> str:
        return self.stems[index]

    def label_path(self, index: int) -> Path:
        return self.pairs[index][1]

    def load_label_ids(self, index: int) -> np.ndarray:
        """The stored label ids (0..33), checked against the label table."""
        path = self.pairs[index][1]
        raw = read_label(path)
        if raw.ndim != 2:
            raise DatasetError(f"{path}: expected a single-channel image of label ids")
        top = int(raw.max(initial=0))
        if top >= NUM_LABEL_IDS:
            raise DatasetError(f"{path}: label id {top} is outside the Cityscapes label table (0..{NUM_LABEL_IDS - 1})")
        return raw

    def load_label(self, index: int) -> np.ndarray:
        return self.id_to_train[self.load_label_ids(index)]

    def load_instances(self, index: int) -> np.ndarray:
        """Instance ids as int32: ``label_id * 1000 + k`` for instances, the plain label id elsewhere."""
        path = self.instance_paths[index]
        if not path.is_file():
            raise DatasetError(f"{path}: instance ids missing (needed for iIoU)")
        ids = read_label(path).astype(np.int32)
        return ids


def cityscapes(root: str | Path, split: str, transform: PairTransform | None = None) -> CityscapesDataset:
    return CityscapesDataset(root, split, transform)
