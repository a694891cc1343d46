"""CamVid in the SegNet layout: ``{split}.txt`` lists ``image label`` pairs; 11 classes, 11 ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fasterseg.data.base import IGNORE_INDEX, DatasetError, DatasetInfo, PairedFileDataset, PairTransform

CAMVID_INFO = DatasetInfo(
    name="camvid",
    class_names=("sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car", "pedestrian", "bicyclist"),
    palette=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
             (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
)


def camvid_id_table() -> np.ndarray:
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    table[:11] = np.arange(11)
    return table


def camvid(root: str | Path, split: str, transform: PairTransform | None = None) -> PairedFileDataset:
    root = Path(root)
    listing = root / f"{split}.txt"
    if not listing.is_file():
        raise DatasetError(f"{listing}: no list file for split '{split}' (CamVid expects {split}.txt of 'image label' lines)")
    pairs = []
    for n, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DatasetError(f"{listing}:{n}: expected 'image label', got {line!r}")
        image, label = root / parts[0], root / parts[1]
        for p in (image, label):
            if not p.is_file():
                raise DatasetError(f"{listing}:{n}: {p} does not exist")
        pairs.append((image, label))
    return PairedFileDataset(CAMVID_INFO, pairs, camvid_id_table(), transform, source=str(listing))
