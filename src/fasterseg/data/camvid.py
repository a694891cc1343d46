"""CamVid in the SegNet layout: ``{split}.txt`` lists ``image label`` pairs; 11 classes, 11 ignored.

Besides the listed splits (``train``, ``val``, ``test`` where present) there are splits made
from them: ``trainval`` (train + val), and two that share no sequence, for choosing models on
scenes training never saw. CamVid frame names start with their sequence (0001TP, 0006R0,
0016E5, Seq05VD); the SegNet ``val`` frames come from 0016E5, which also gives 204 of the 367
``train`` frames, so ``val`` flatters a model. ``seq_val`` is every train + val frame of 0006R0
(101 frames) and ``seq_train`` the rest (0001TP and 0016E5, 367 frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fasterseg.data.base import IGNORE_INDEX, DatasetInfo, PairedFileDataset, PairTransform
from fasterseg.errors import DatasetError

CAMVID_INFO = DatasetInfo(
    name="camvid",
    class_names=("sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car", "pedestrian", "bicyclist"),
    palette=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
             (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
)


def camvid_id_table() -> np.ndarray:
    """Stored ids 0..10 are the classes and 11 is void (ignored); any other value is an error."""
    table = np.full(12, IGNORE_INDEX, dtype=np.uint8)
    table[:11] = np.arange(11)
    return table


HELDOUT_SEQUENCE = "0006R0"
DERIVED_SPLITS = {  # name -> (listed splits it is made of, keep a frame of this sequence?)
    "trainval": (("train", "val"), lambda seq: True),
    "seq_train": (("train", "val"), lambda seq: seq != HELDOUT_SEQUENCE),
    "seq_val": (("train", "val"), lambda seq: seq == HELDOUT_SEQUENCE),
}


def sequence_of(path: Path) -> str:
    """The recording sequence a CamVid frame belongs to (the part of its name before ``_``)."""
    return path.name.split("_", 1)[0]


def camvid(root: str | Path, split: str, transform: PairTransform | None = None) -> PairedFileDataset:
    root = Path(root)
    if split in DERIVED_SPLITS and not (root / f"{split}.txt").is_file():
        listed, keep = DERIVED_SPLITS[split]
        pairs = [pair for name in listed for pair in _listed_pairs(root, name) if keep(sequence_of(pair[0]))]
        return PairedFileDataset(CAMVID_INFO, pairs, camvid_id_table(), transform, source=f"{root} split '{split}'")
    return PairedFileDataset(CAMVID_INFO, _listed_pairs(root, split), camvid_id_table(), transform,
                             source=str(root / f"{split}.txt"))


def _listed_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    listing = root / f"{split}.txt"
    if not listing.is_file():
        derived = ", ".join(DERIVED_SPLITS)
        raise DatasetError(f"{listing}: no list file for split '{split}' (CamVid expects {split}.txt of 'image label' "
                           f"lines; made from train.txt and val.txt: {derived})")
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
    return pairs
