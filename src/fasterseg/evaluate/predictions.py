"""Evaluate a folder of prediction PNGs against a dataset split, as the official script does.

One single-channel PNG per ground-truth image, anywhere under the folder, matched by name: the
file's stem equals the sample name or starts with it followed by ``_`` (so Cityscapes'
``{city}_{seq}_{frame}_leftImg8bit.png`` or ``..._pred.png`` both match). A missing, extra or
doubled prediction is an error before anything is scored. Files are decoded by a few threads
(PNG decoding releases the GIL) while the scorer counts.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from fasterseg.errors import EvaluationError
from fasterseg.evaluate.scorer import Result, make_scorer


def read_prediction(path: Path) -> np.ndarray:
    """A single-channel PNG of ids; anything else is an error naming the file."""
    from fasterseg.data.base import read_label

    return read_label(path, what="prediction", error=EvaluationError)


def _owner(stem: str, names: set[str]) -> str | None:
    if stem in names:
        return stem
    parts = stem.split("_")
    for k in range(len(parts) - 1, 0, -1):  # longest name first
        prefix = "_".join(parts[:k])
        if prefix in names:
            return prefix
    return None


def match_predictions(pred_dir: str | Path, names: list[str]) -> list[Path]:
    """The prediction file of each name, in order; errors name what is missing, extra or doubled."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise EvaluationError(f"{pred_dir}: prediction folder does not exist")
    wanted = set(names)
    found: dict[str, Path] = {}
    extra: list[Path] = []
    for path in sorted(pred_dir.rglob("*.png")):
        owner = _owner(path.stem, wanted)
        if owner is None:
            extra.append(path)
        elif owner in found:
            raise EvaluationError(f"{path}: a second prediction for '{owner}' (the first is {found[owner]})")
        else:
            found[owner] = path
    if extra:
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        raise EvaluationError(f"{extra[0]}: prediction matches no ground-truth image of the split{more}")
    missing = [n for n in names if n not in found]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise EvaluationError(f"{pred_dir}: no prediction for '{missing[0]}'{more} (expected {missing[0]}*.png)")
    return [found[n] for n in names]


# ``fasterseg predict``'s id-map folders and the ids each holds (its other folders are pictures)
PREDICT_ID_FOLDERS = {"labels": "train", "label_ids": "label"}


def resolve_prediction_folder(pred_dir: str | Path, ids: str | None) -> tuple[Path, str, str | None]:
    """(folder to score, id kind, note) for ``eval --pred-dir``. A folder ``fasterseg predict``
    wrote (``labels/`` train ids, ``label_ids/`` label ids, beside colour pictures) is scored
    through its id maps, ``ids`` choosing between them (default: ``labels/``); any other folder
    is scored as it is, label ids unless ``ids`` says train."""
    pred_dir = Path(pred_dir)
    present = {name: kind for name, kind in PREDICT_ID_FOLDERS.items() if (pred_dir / name).is_dir()}
    if not present:
        return pred_dir, ids or "label", None
    if ids is not None:
        wanted = [name for name, kind in present.items() if kind == ids]
        if not wanted:
            folder = next(name for name, kind in PREDICT_ID_FOLDERS.items() if kind == ids)
            raise EvaluationError(f"{pred_dir}: a fasterseg predict folder without {folder}/ (--ids {ids}); it has "
                                  f"{', '.join(n + '/' for n in present)}")
        name = wanted[0]
    else:
        name = "labels" if "labels" in present else "label_ids"
    kind = present[name]
    return pred_dir / name, kind, f"scoring {pred_dir / name} ({'train' if kind == 'train' else 'label'} ids, as fasterseg predict writes them)"


def looks_like_train_ids(pred: np.ndarray) -> bool:
    """Most pixels of a Cityscapes label-id map fall in evaluated classes; train ids read as
    label ids mostly do not (train id 0, road, is label id 0, unlabeled)."""
    from fasterseg.data.labels import id_to_train_table

    table = id_to_train_table()
    valid = pred < len(table)
    return bool(valid.all()) and float((table[pred] == 255).mean()) > 0.5


def prefetch(load: Callable[[int], object], n: int, workers: int = 4, depth: int = 8) -> Iterator[object]:
    """``load(0..n-1)`` in order, computed ahead by a few threads, at most ``depth`` in memory."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        for i in range(n):
            pending.append(pool.submit(load, i))
            if len(pending) >= depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def evaluate_predictions(pred_dir: str | Path, dataset, ids: str = "label", workers: int = 4, progress: bool = True,
                         warn: Callable[[str], None] | None = None) -> Result:
    """Score every prediction PNG under ``pred_dir`` against ``dataset`` (labels only; images are
    not read). Nothing here imports torch: a scoring process starts in a fraction of a second.

    ``ids``: for Cityscapes-layout datasets, whether the PNGs hold label ids (as the benchmark
    expects) or train ids; other datasets always hold class indices. ``warn`` is told when label
    ids look like train ids (:func:`looks_like_train_ids` on the first file).
    """
    from tqdm import tqdm

    names = [dataset.name(i) for i in range(len(dataset))]
    if not names:
        raise EvaluationError("the split is empty: nothing to evaluate")
    files = match_predictions(pred_dir, names)
    scorer = make_scorer(dataset)
    with_instances = getattr(dataset, "has_instances", False)

    def load(i: int):
        pred = read_prediction(files[i])
        label = dataset.load_label(i)
        inst = dataset.load_instances(i) if with_instances else None
        if pred.shape != label.shape:
            raise EvaluationError(f"{files[i]}: prediction is {pred.shape[0]}x{pred.shape[1]} (height x width) but "
                                  f"its ground truth is {label.shape[0]}x{label.shape[1]}")
        return i, pred, label, inst

    for i, pred, label, inst in tqdm(prefetch(load, len(files), workers), total=len(files), desc="eval",
                                     unit="img", disable=not progress):
        if i == 0 and warn and with_instances and ids == "label" and looks_like_train_ids(pred):
            warn(f"{files[0]}: most pixels are ids of no evaluated class when read as label ids; "
                 "if the folder holds train ids, pass --ids train")
        scorer.update(pred, label, inst, ids=ids if with_instances else "train", source=str(files[i]))
    return scorer.result()
