"""Colours and label-id mappings for a model's classes, derived from the label tables.

A 19-class Cityscapes model uses the Cityscapes colours; a model may carry its own palette in
``meta.extra["palette"]`` (one [r, g, b] per class); anything else gets a fixed, well-spread
palette generated from the class index, so the same model always draws the same colours.
"""

from __future__ import annotations

import numpy as np

from fasterseg.data.labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, generated_palette, train_to_id_table
from fasterseg.errors import FasterSegError


def palette_for(meta) -> np.ndarray:
    """(classes, 3) uint8 colours for a model's classes; see the module docstring for the order of choice."""
    names = tuple(meta.class_names)
    custom = (meta.extra or {}).get("palette")
    if custom is not None:
        array = np.asarray(custom)
        if array.shape != (len(names), 3) or array.min() < 0 or array.max() > 255:
            raise FasterSegError(f"model palette (meta.extra['palette']) must be {len(names)} [r, g, b] triples in 0..255, "
                                 f"got shape {array.shape}")
        return array.astype(np.uint8)
    if names == CITYSCAPES_CLASSES:
        return np.asarray(CITYSCAPES_PALETTE, dtype=np.uint8)
    return generated_palette(len(names))


def is_cityscapes(meta) -> bool:
    return tuple(meta.class_names) == CITYSCAPES_CLASSES


def train_to_label_id_table(meta) -> np.ndarray:
    """Lookup table train id -> Cityscapes label id (what the test server and its evaluator read)."""
    if not is_cityscapes(meta):
        raise FasterSegError(f"label ids are defined for the 19 Cityscapes classes; this model has {len(meta.class_names)} "
                             f"classes ({', '.join(meta.class_names[:4])}, ...); write train ids instead")
    return train_to_id_table()


def colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) uint8 colours."""
    return palette[labels]


def overlay(image: np.ndarray, color: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The colour mask blended over the RGB image with weight ``alpha``."""
    blended = (1 - alpha) * image.astype(np.float32) + alpha * color.astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)
