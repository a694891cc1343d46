"""Cityscapes test-server submission: train-id predictions -> label-id PNGs in one zip.

The server matches each ground-truth frame ``{city}_{seq}_{frame}`` to a file named
``{city}_{seq}_{frame}*.png`` anywhere in the archive and reads label ids (not train ids), so
every prediction is mapped through the label table and stored as
``{city}/{city}_{seq}_{frame}_leftImg8bit.png``. The zip is written under a temporary name and
renamed when complete, so an interrupted export never leaves a plausible-looking archive behind.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from fasterseg.data.labels import train_to_id_table
from fasterseg.evaluate.cityscapes import NUM_CLASSES
from fasterseg.errors import EvaluationError
from fasterseg.evaluate.predictions import read_prediction
from fasterseg.utils.io import atomic_path

FRAME_NAME = re.compile(r"^([A-Za-z0-9-]+)_(\d{6})_(\d{6})")


def submission_name(name: str) -> str:
    """The archive member for a frame name (``berlin_000000_000019[_anything]``)."""
    m = FRAME_NAME.match(name)
    if not m:
        raise EvaluationError(f"'{name}' is not a Cityscapes frame name (CITY_SEQUENCE_FRAME, e.g. berlin_000000_000019)")
    city, seq, frame = m.groups()
    return f"{city}/{city}_{seq}_{frame}_leftImg8bit.png"


def to_label_ids(train_ids: np.ndarray, source: str = "prediction") -> np.ndarray:
    """Train ids (0..18; 255 allowed, written as 'unlabeled') -> uint8 label ids."""
    arr = np.asarray(train_ids)
    if arr.ndim != 2:
        raise EvaluationError(f"{source}: expected an HxW map of train ids, got shape {arr.shape}")
    bad = (arr < 0) | ((arr >= NUM_CLASSES) & (arr != 255))
    if bad.any():
        raise EvaluationError(f"{source}: value {int(arr[bad][0])} is not a Cityscapes train id (0..{NUM_CLASSES - 1})")
    return train_to_id_table()[arr.astype(np.int64)]


class SubmissionWriter:
    """Add predictions one by one (``add(name, train_ids)``), then ``close()`` publishes the zip."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._zip = zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_STORED)  # PNGs are compressed already
        self._names: set[str] = set()

    def add(self, name: str, train_ids: np.ndarray) -> str:
        member = submission_name(name)
        if member in self._names:
            raise EvaluationError(f"'{name}': a second prediction for {member}")
        buf = io.BytesIO()
        Image.fromarray(to_label_ids(train_ids, source=name)).save(buf, format="PNG")
        self._zip.writestr(member, buf.getvalue())
        self._names.add(member)
        return member

    def close(self) -> Path:
        self._zip.close()
        if not self._names:
            self._ctx.__exit__(EvaluationError, None, None)
            raise EvaluationError(f"{self.path}: no predictions were added; nothing to submit")
        self._ctx.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        self._zip.close()
        self._ctx.__exit__(EvaluationError, None, None)

    def __enter__(self) -> "SubmissionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def export_submission(predictions: Iterable[tuple[str, np.ndarray]], out_zip: str | Path) -> Path:
    """Write ``(frame name, train-id map)`` pairs as the test server's zip of label-id PNGs."""
    with SubmissionWriter(out_zip) as writer:
        for name, train_ids in predictions:
            writer.add(name, train_ids)
    return Path(out_zip)


def export_submission_dir(pred_dir: str | Path, out_zip: str | Path) -> Path:
    """The same from a folder of train-id PNGs named after their frames."""
    files = sorted(Path(pred_dir).rglob("*.png"))
    if not files:
        raise EvaluationError(f"{pred_dir}: no prediction PNGs found")
    return export_submission(((p.stem, read_prediction(p)) for p in files), out_zip)
