"""The Cityscapes test-server archive: one label-id PNG per test image, in one zip.

The server (and cityscapesscripts' evaluator) finds a prediction by the image's
``<city>_<sequence>_<frame>`` prefix; we keep the image's own name, ending in
``_leftImg8bit.png``, at the root of the archive.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SUFFIX = "_leftImg8bit"


def submission_name(stem: str) -> str:
    """'berlin_000000_000019_leftImg8bit' -> itself + '.png'; other stems get the suffix added."""
    stem = Path(stem).name
    return f"{stem}.png" if stem.endswith(SUFFIX) else f"{stem}{SUFFIX}.png"


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class SubmissionWriter:
    """Collects label-id maps and writes the zip atomically on ``close`` (nothing half-written)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._zip = zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_DEFLATED)
        self.names: set[str] = set()

    def add(self, stem: str, label_ids: np.ndarray) -> None:
        name = submission_name(stem)
        if name in self.names:
            raise ValueError(f"{name} is already in the submission")
        self.names.add(name)
        self._zip.writestr(name, png_bytes(label_ids.astype(np.uint8)))

    def close(self, keep: bool = True) -> None:
        self._zip.close()
        if keep:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
