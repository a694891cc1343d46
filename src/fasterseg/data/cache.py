"""A decoded copy of a split on disk, so training reads arrays instead of decoding PNGs.

Every sample's image (H, W, 3) and train-id label (H, W) are stored as raw ``uint8`` in one file
that is memory-mapped; an index beside it holds each sample's offset and shape. The cache is
named by a fingerprint of the dataset's kind, its file list and every file's size and
modification time, so adding, removing or changing a file gives a new fingerprint and a fresh
build (the stale one is removed). It is written under a temporary name and renamed when
complete: an interrupted build leaves nothing that a later run could mistake for a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fasterseg.data.base import DatasetInfo
from fasterseg.errors import DatasetError
from fasterseg.utils.io import atomic_path, atomic_write_text

FORMAT_VERSION = 1


def fingerprint(dataset) -> tuple[str, str]:
    """Two digests: of the file list (which split this is) and of everything the decoded arrays
    depend on (the reader, the label table, every file's size and modification time)."""
    if not hasattr(dataset, "pairs"):
        raise DatasetError(f"{type(dataset).__name__}: cannot be cached (it lists no image/label files)")
    files, content = hashlib.sha256(), hashlib.sha256()
    content.update(f"v{FORMAT_VERSION}:{type(dataset).__module__}.{type(dataset).__qualname__}:{dataset.info.name}".encode())
    content.update(np.asarray(dataset.id_to_train).tobytes())
    for image, label in dataset.pairs:
        for path in (image, label):
            resolved = str(Path(path).resolve())
            st = os.stat(path)
            files.update(f"{resolved}\n".encode())
            content.update(f"{resolved}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return files.hexdigest()[:12], content.hexdigest()[:16]


class CachedDataset:
    """The same contract as the dataset it was built from (``info``, ``name``, ``[i]``), read from
    the memory-mapped arrays; ``[i]`` returns read-only views (transforms copy what they change)."""

    def __init__(self, base, data_path: Path, index: dict):
        self.base = base
        self.info: DatasetInfo = base.info
        self.transform = None
        self.path = data_path
        self._offsets = index["offsets"]
        self._shapes = [tuple(s) for s in index["shapes"]]
        self._data = np.memmap(data_path, dtype=np.uint8, mode="r")

    def __len__(self) -> int:
        return len(self._shapes)

    def name(self, index: int) -> str:
        return self.base.name(index)

    def __getitem__(self, index: int):
        h, w = self._shapes[index]
        start = self._offsets[index]
        image = self._data[start: start + h * w * 3].reshape(h, w, 3)
        label = self._data[start + h * w * 3: start + h * w * 4].reshape(h, w)
        return image, label

    def __getstate__(self):  # data-loading workers map the file themselves
        state = dict(self.__dict__)
        state["_data"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._data = np.memmap(self.path, dtype=np.uint8, mode="r")


def cache_bytes(dataset) -> int:
    """The size a cache of ``dataset`` would take (4 bytes a pixel), from the image headers alone."""
    from PIL import Image

    total = 0
    for image, _ in dataset.pairs:
        try:
            with Image.open(image) as im:
                total += im.size[0] * im.size[1] * 4
        except OSError:
            continue  # reported by name when the sample is read
    return total


def cached(dataset, cache_dir: str | Path, show_progress: bool = True) -> CachedDataset:
    """``dataset`` decoded once into ``cache_dir`` (built now if absent or stale) and memory-mapped."""
    if getattr(dataset, "transform", None) is not None:
        raise DatasetError(f"{type(dataset).__name__}: cache the dataset before giving it a transform")
    cache_dir = Path(cache_dir)
    split_key, key = fingerprint(dataset)
    stem = f"{dataset.info.name}-{split_key}-{key}"
    data_path, index_path = cache_dir / f"{stem}.u8", cache_dir / f"{stem}.json"
    if data_path.is_file() and index_path.is_file():
        index = json.loads(index_path.read_text())
        if index.get("fingerprint") == key and len(index.get("shapes", ())) == len(dataset.pairs):
            return CachedDataset(dataset, data_path, index)
    offsets, shapes, offset = [], [], 0
    with atomic_path(data_path) as tmp, open(tmp, "wb") as out:
        for i in tqdm(range(len(dataset)), desc=f"caching {dataset.info.name}", leave=False, disable=not show_progress):
            image, label = dataset[i]
            if label.max(initial=0) > 255:
                raise DatasetError(f"{dataset.pairs[i][1]}: train id {int(label.max())} does not fit the uint8 cache")
            out.write(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
            out.write(np.ascontiguousarray(label, dtype=np.uint8).tobytes())
            offsets.append(offset)
            shapes.append(list(label.shape))
            offset += label.size * 4
        out.flush()
        os.fsync(out.fileno())
    index = {"fingerprint": key, "format": FORMAT_VERSION, "dataset": dataset.info.name,
             "offsets": offsets, "shapes": shapes}
    atomic_write_text(index_path, json.dumps(index) + "\n")
    for stale in cache_dir.glob(f"{dataset.info.name}-{split_key}-*"):  # this split's files changed since
        if stale not in (data_path, index_path):
            stale.unlink(missing_ok=True)
    return CachedDataset(dataset, data_path, index)
