"""The dataset contract every source (Cityscapes, CamVid, BDD100K, folder, synthetic) follows.

``dataset[i]`` returns ``(image, label)``: ``image`` an RGB ``uint8`` array (H, W, 3), ``label``
a ``uint8``/``int64`` array (H, W) of train ids with ``info.ignore_index`` for pixels that are
not trained or evaluated. An optional ``transform(image, label) -> (image, label)`` is applied
to the pair, so image and label can never drift apart. ``dataset.name(i)`` gives a stable
per-sample name (used to match predictions and write outputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from fasterseg.errors import DatasetError

IGNORE_INDEX = 255
PairTransform = Callable[[np.ndarray, np.ndarray], tuple]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model trained on the dataset must know about its classes."""

    name: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 array; a missing or corrupt file is an error naming it."""
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I"):  # 16/32-bit grey: PIL's RGB conversion clips it to white
                grey = np.asarray(im).astype(np.int64)
                return np.repeat(np.clip(grey >> 8, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such image") from None
    except Image.DecompressionBombError as exc:  # a tiny file claiming a huge size: refused before decoding
        raise DatasetError(f"{path}: refused, too many pixels to decode safely ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(f"{path}: cannot decode image ({exc})") from None


def read_label(path: Path, what: str = "label image", error: type[Exception] = DatasetError) -> np.ndarray:
    """A single-channel PNG of ids (labels, or predictions with ``what``/``error`` set by the
    evaluator) as a uint8/uint16 array, read without any colour conversion."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise error(f"{path}: {what}s must be single-channel PNGs of ids, got mode {im.mode}")
            return np.array(im)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except Image.DecompressionBombError as exc:
        raise error(f"{path}: refused, too many pixels to decode safely ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, error):
            raise
        raise error(f"{path}: cannot decode {what} ({exc})") from None


class PairedFileDataset:
    """Images and labels given as path pairs, with a lookup table from stored ids to train ids."""

    def __init__(self, info: DatasetInfo, pairs: list[tuple[Path, Path]], id_to_train: np.ndarray,
                 transform: PairTransform | None = None, source: str = ""):
        if not pairs:
            raise DatasetError(f"{source or info.name}: the split is empty")
        self.info = info
        self.pairs = pairs
        self.id_to_train = id_to_train
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pairs)

    def name(self, index: int) -> str:
        return self.pairs[index][0].stem

    def load_label(self, index: int) -> np.ndarray:
        path = self.pairs[index][1]
        raw = read_label(path)
        if raw.max(initial=0) >= len(self.id_to_train):
            raise DatasetError(f"{path}: label value {int(raw.max())} is outside the label table (0..{len(self.id_to_train) - 1})")
        return self.id_to_train[raw]

    def __getitem__(self, index: int):
        image_path, _ = self.pairs[index]
        image = read_image(image_path)
        label = self.load_label(index)
        if image.shape[:2] != label.shape:
            raise DatasetError(f"{image_path}: image is {image.shape[1]}x{image.shape[0]} but its label is {label.shape[1]}x{label.shape[0]}")
        if self.transform is not None:
            return self.transform(image, label)
        return image, label


class ConcatDataset:
    """Several splits of one dataset read as one (e.g. ``train`` + ``val``): indices run through
    the parts in order, so an epoch over it visits every sample of every part once."""

    def __init__(self, parts: list, source: str = ""):
        if not parts:
            raise DatasetError(f"{source or 'dataset'}: no splits given")
        info = parts[0].info
        for part in parts[1:]:
            if part.info.class_names != info.class_names:
                raise DatasetError(f"{source or info.name}: the splits do not share their classes "
                                   f"({info.class_names} vs {part.info.class_names})")
        self.parts = parts
        self.info = info
        self.transform = None
        self._starts = np.cumsum([0] + [len(p) for p in parts]).tolist()

    def __len__(self) -> int:
        return self._starts[-1]

    def _locate(self, index: int) -> tuple:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is outside 0..{len(self) - 1}")
        part = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self.parts[part], index - self._starts[part]

    def name(self, index: int) -> str:
        part, i = self._locate(index)
        return part.name(i)

    def __getitem__(self, index: int):
        part, i = self._locate(index)
        return part[i]
