"""Per-class loss weights from the training labels, so that rare thin classes (pole, sign,
pedestrian) are not drowned by road and sky.

``median_frequency`` (Eigen & Fergus; SegNet's CamVid recipe): a class's frequency is its pixels
over the pixels of the images it appears in, and its weight the median frequency over its own.
``inverse_log`` (ENet): ``1 / ln(c + p)`` with ``p`` the class's share of all labelled pixels and
``c`` the offset (ENet's 1.02; the from-scratch CamVid recipes' 1.10, a milder spread), bounded by
``1 / ln(c)``. A class absent from the labels weighs 1.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm


def label_statistics(dataset, num_classes: int, ignore_index: int, show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per class: labelled pixels, and the labelled pixels of the images where the class appears."""
    pixels = np.zeros(num_classes, dtype=np.int64)
    present_in = np.zeros(num_classes, dtype=np.int64)
    for i in tqdm(range(len(dataset)), desc="class frequencies", leave=False, disable=not show_progress):
        label = np.asarray(dataset[i][1]).ravel()
        counts = np.bincount(label[label != ignore_index], minlength=num_classes)[:num_classes]
        pixels += counts
        present_in += np.where(counts > 0, counts.sum(), 0)
    return pixels, present_in


def class_weights(kind: str, pixels: np.ndarray, present_in: np.ndarray, offset: float = 1.02) -> torch.Tensor:
    """Weights (C,) of ``kind`` from :func:`label_statistics`' counts (``offset``: inverse_log's c)."""
    seen = pixels > 0
    weights = np.ones(len(pixels), dtype=np.float64)
    if kind == "median_frequency":
        freq = pixels[seen] / present_in[seen]
        weights[seen] = np.median(freq) / freq
    elif kind == "inverse_log":
        share = pixels[seen] / pixels.sum()
        weights[seen] = 1.0 / np.log(offset + share)
    elif kind != "none":
        raise ValueError(f"unknown class weighting {kind!r} (none, median_frequency, inverse_log)")
    return torch.tensor(weights, dtype=torch.float32)
