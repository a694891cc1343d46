"""Custom data without code: images and label PNGs in folders, described by a small YAML file.

``ROOT/dataset.yaml`` (every key but ``classes`` optional)::

    name: mine
    classes: [background, crack, rust]      # class index = position
    colors: [[0, 0, 0], [255, 0, 0], [0, 0, 255]]
    ignore_index: 255
    images: images/{split}                  # relative to ROOT
    labels: labels/{split}
    label_format: index                     # or: color (RGB masks in the colours above)
    ignore_color: [255, 255, 255]           # color masks only: pixels not trained or scored

Images and labels are matched by file stem; a label PNG with the same stem must exist for
every image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from fasterseg.config import load_config
from fasterseg.errors import ConfigError
from fasterseg.data.base import DatasetInfo, PairedFileDataset, PairTransform, read_image, read_label
from fasterseg.errors import DatasetError
from fasterseg.data.labels import generated_palette

CONFIG_NAME = "dataset.yaml"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class FolderConfig:
    name: str = "folder"
    classes: list[str] = field(default_factory=list)
    colors: list[list[int]] = field(default_factory=list)
    ignore_index: int = 255
    images: str = "images/{split}"
    labels: str = "labels/{split}"
    label_format: Literal["index", "color"] = "index"
    ignore_color: list[int] | None = None


def load_folder_config(root: Path) -> FolderConfig:
    path = root / CONFIG_NAME
    if not path.is_file():
        raise DatasetError(f"{path}: missing; a folder dataset is described by {CONFIG_NAME} (classes, colors, ...)")
    cfg = load_config(FolderConfig, path)
    if not cfg.classes:
        raise ConfigError(f"{path}: classes: at least one class name is required")
    if not 0 <= cfg.ignore_index <= 255 or cfg.ignore_index < len(cfg.classes):
        raise ConfigError(f"{path}: ignore_index: {cfg.ignore_index} must be in {len(cfg.classes)}..255")
    if cfg.colors and len(cfg.colors) != len(cfg.classes):
        raise ConfigError(f"{path}: colors: {len(cfg.colors)} colours for {len(cfg.classes)} classes")
    for i, c in enumerate(cfg.colors):
        if len(c) != 3 or any(not 0 <= v <= 255 for v in c):
            raise ConfigError(f"{path}: colors[{i}]: expected [r, g, b] in 0..255, got {c}")
    if cfg.label_format == "color" and not cfg.colors:
        raise ConfigError(f"{path}: label_format: color needs the colors of the classes")
    return cfg


def _folder_info(cfg) -> tuple[DatasetInfo, list[tuple[int, int, int]]]:
    palette = [tuple(c) for c in cfg.colors] or [tuple(c) for c in generated_palette(len(cfg.classes)).tolist()]
    info = DatasetInfo(name=cfg.name, class_names=tuple(cfg.classes), palette=tuple(palette), ignore_index=cfg.ignore_index)
    return info, palette


def folder_images(root: Path, split: str) -> tuple[DatasetInfo, list[Path]]:
    """The classes and the images of ``split``, without requiring labels (what int8 calibration reads)."""
    root = Path(root)
    cfg = load_folder_config(root)
    image_dir = root / cfg.images.format(split=split)
    if not image_dir.is_dir():
        raise DatasetError(f"{image_dir}: no such folder (from {root / CONFIG_NAME}, split '{split}')")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DatasetError(f"{image_dir}: holds no images (split '{split}')")
    return _folder_info(cfg)[0], images


class FolderDataset(PairedFileDataset):
    """Index or colour masks, checked against the declared classes on every read."""

    def __init__(self, root: Path, split: str, transform: PairTransform | None = None):
        root = Path(root)
        cfg = load_folder_config(root)
        info, palette = _folder_info(cfg)
        image_dir, label_dir = root / cfg.images.format(split=split), root / cfg.labels.format(split=split)
        for d in (image_dir, label_dir):
            if not d.is_dir():
                raise DatasetError(f"{d}: no such folder (from {root / CONFIG_NAME}, split '{split}')")
        pairs = []
        for image in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            label = label_dir / f"{image.stem}.png"
            if not label.is_file():
                raise DatasetError(f"{image}: its label {label} does not exist")
            pairs.append((image, label))
        table = np.full(256, cfg.ignore_index, dtype=np.uint8)
        table[: len(cfg.classes)] = np.arange(len(cfg.classes))
        super().__init__(info, pairs, table, transform, source=str(image_dir))
        self.cfg = cfg
        codes = np.array([(r << 16) | (g << 8) | b for r, g, b in palette], dtype=np.int64)
        self._codes_order = np.argsort(codes)
        self._codes_sorted = codes[self._codes_order]
        ic = cfg.ignore_color
        self._ignore_code = None if ic is None else (ic[0] << 16) | (ic[1] << 8) | ic[2]

    def load_label(self, index: int) -> np.ndarray:
        path = self.pairs[index][1]
        n, ignore = self.info.num_classes, self.info.ignore_index
        if self.cfg.label_format == "index":
            raw = read_label(path)
            bad = (raw >= n) & (raw != ignore)
            if bad.any():
                raise DatasetError(f"{path}: label value {int(raw[bad][0])} is neither a class (0..{n - 1}) nor ignore ({ignore})")
            return raw.astype(np.uint8)
        rgb = read_image(path).astype(np.int64)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        pos = np.clip(np.searchsorted(self._codes_sorted, code), 0, n - 1)
        known = self._codes_sorted[pos] == code
        label = np.where(known, self._codes_order[pos], ignore).astype(np.uint8)
        unknown = ~known if self._ignore_code is None else ~known & (code != self._ignore_code)
        if unknown.any():
            c = int(code[unknown][0])
            raise DatasetError(f"{path}: colour ({c >> 16}, {(c >> 8) & 255}, {c & 255}) is not a class colour in {CONFIG_NAME}")
        return label


def folder(root: str | Path, split: str, transform: PairTransform | None = None) -> FolderDataset:
    return FolderDataset(Path(root), split, transform)
