"""The official Cityscapes pixel-level numbers, from one confusion matrix and per-instance sums.

What the benchmark computes (``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``),
counted in a form that streams image by image:

* Rows of the matrix are the 19 evaluated classes (ground truth of ignored labels is never used).
  Columns are the 19 classes followed by one column per ignored label id, because the official
  numbers do not treat all ignored predictions alike: a pixel predicted as ``caravan`` is a false
  negative for the class ``car`` but a true positive for the category ``vehicle`` in iIoU.
* iIoU re-weights each ground-truth instance's true positives and false negatives by
  ``average size of its class / its size``; the per-instance counts come from ``instanceIds``
  with one ``bincount`` over instance ids (ids above 1000, label id = id // 1000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fasterseg.data.labels import (
    CATEGORY_TO_LABELS, CITYSCAPES_AVG_INSTANCE_SIZE, CITYSCAPES_CATEGORIES, CITYSCAPES_CLASSES, ID_TO_LABEL,
    IGNORE_INDEX, NUM_LABEL_IDS, train_labels,
)
from fasterseg.evaluate.confusion import ConfusionMatrix, as_index, host_array
from fasterseg.errors import EvaluationError

NUM_CLASSES = len(CITYSCAPES_CLASSES)
MAX_INSTANCE_ID = NUM_LABEL_IDS * 1000  # instance ids are label_id * 1000 + k


def _columns() -> tuple[np.ndarray, list[int]]:
    """Label id -> matrix column (train id, or 19+ for ignored ids), and the label id of each column."""
    col = np.full(NUM_LABEL_IDS, -1, dtype=np.int64)
    owners = [lab.id for lab in train_labels()]
    for lab in train_labels():
        col[lab.id] = lab.train_id
    for lid in sorted(ID_TO_LABEL):
        if col[lid] < 0:
            col[lid] = len(owners)
            owners.append(lid)
    return col, owners


LABEL_ID_TO_COLUMN, COLUMN_LABEL_IDS = _columns()
NUM_COLUMNS = len(COLUMN_LABEL_IDS)
INSTANCE_CLASSES = tuple(lab.name for lab in train_labels() if lab.has_instances)
# Categories scored by iIoU: those whose every label (with an id) has instances, as the official script decides.
INSTANCE_CATEGORIES = tuple(cat for cat in CITYSCAPES_CATEGORIES
                            if all(lab.has_instances for lab in CATEGORY_TO_LABELS[cat] if lab.id >= 0))


def _category_columns(cat: str, evaluated_only: bool) -> list[int]:
    ids = {lab.id for lab in CATEGORY_TO_LABELS[cat] if lab.id >= 0 and not (evaluated_only and lab.ignore_in_eval)}
    return [c for c, lid in enumerate(COLUMN_LABEL_IDS) if lid in ids]


def _instance_tables() -> dict[str, np.ndarray]:
    """Per instance id: its class (train id, -1 skipped, -2 invalid), category slot, weight numerator."""
    n = MAX_INSTANCE_ID
    train = np.full(n, -2, dtype=np.int64)
    cat = np.full(n, -1, dtype=np.int64)
    avg = np.zeros(n, dtype=np.float64)
    for lid, lab in ID_TO_LABEL.items():
        rows = slice(lid * 1000, lid * 1000 + 1000)
        if lab.ignore_in_eval:
            train[rows] = -1  # instances of ignored labels (caravan, trailer, ...) are skipped
            continue
        if not lab.has_instances:
            continue  # stays invalid: an instance id for a class without instances
        train[rows] = lab.train_id
        avg[rows] = CITYSCAPES_AVG_INSTANCE_SIZE[lab.name]
        if lab.category in INSTANCE_CATEGORIES:
            cat[rows] = INSTANCE_CATEGORIES.index(lab.category)
    train[: 1001] = -1  # ids up to 1000 are not instances
    return {"train": train, "cat": cat, "avg": avg}


def _nan_mean(values: dict[str, float]) -> float:
    valid = [v for v in values.values() if not math.isnan(v)]
    return sum(valid) / len(valid) if valid else float("nan")


@dataclass
class CityscapesResult:
    """The benchmark's numbers as fractions (the table prints percent); NaN where undefined."""

    class_iou: dict[str, float]
    class_iiou: dict[str, float]
    category_iou: dict[str, float]
    category_iiou: dict[str, float]
    pixel_accuracy: float
    mean_accuracy: float
    images: int
    confusion: np.ndarray = field(repr=False)  # 19 x (19 + ignored label ids), counts
    column_names: tuple[str, ...] = field(repr=False, default=())

    @property
    def averages(self) -> dict[str, float]:
        return {"IoU Classes": _nan_mean(self.class_iou), "iIoU Classes": _nan_mean(self.class_iiou),
                "IoU Categories": _nan_mean(self.category_iou), "iIoU Categories": _nan_mean(self.category_iiou)}

    @property
    def miou(self) -> float:
        return self.averages["IoU Classes"]


class _PredSpace:
    """How raw prediction values of one kind (label ids or train ids) relate to the matrix."""

    def __init__(self, ids: str):
        label_ids = sorted(ID_TO_LABEL)
        if ids == "label":
            self.size = NUM_LABEL_IDS
            self.to_column = LABEL_ID_TO_COLUMN.copy()
            value_of = {lid: lid for lid in label_ids}  # the value that names a label
        else:  # train ids 0..18, and 19 standing for 255 ("no class", written as unlabeled)
            self.size = NUM_CLASSES + 1
            self.to_column = np.append(np.arange(NUM_CLASSES), LABEL_ID_TO_COLUMN[0])
            value_of = {lab.id: lab.train_id for lab in train_labels()}
        # per instance id: the prediction value that is a hit for its class (-1: none)
        self.hit_value = np.full(MAX_INSTANCE_ID, -1, dtype=np.int64)
        for lid, v in value_of.items():
            self.hit_value[lid * 1000: lid * 1000 + 1000] = v
        self.cat_member = np.zeros((max(len(INSTANCE_CATEGORIES), 1), self.size), dtype=bool)
        for k, cat in enumerate(INSTANCE_CATEGORIES):
            for lab in CATEGORY_TO_LABELS[cat]:
                if lab.id >= 0 and lab.id in value_of:
                    self.cat_member[k, value_of[lab.id]] = True


class CityscapesScorer:
    """Accumulates one image at a time; :meth:`result` gives the official numbers.

    Counting happens in the raw space of the predictions (label ids or train ids) with two
    ``bincount`` passes per image, one over ``(ground truth, prediction)`` and one over
    ``(instance id, prediction)``; the mapping to classes, categories and instances is applied to
    the small histograms, never to the pixels. Inputs are arrays or tensors on any device; the
    counts live on the host (:mod:`fasterseg.evaluate.confusion`).
    """

    def __init__(self):
        self.images = 0
        self._spaces = {ids: _PredSpace(ids) for ids in ("label", "train")}
        self._conf = {ids: ConfusionMatrix(NUM_CLASSES, IGNORE_INDEX, num_pred=sp.size)
                      for ids, sp in self._spaces.items()}
        t = _instance_tables()
        self._inst_train, self._inst_cat, self._inst_avg = t["train"], t["cat"], t["avg"]
        # weighted TP / FN per class (train id) and per instance category, in float64 as the reference sums
        self.tp_w = np.zeros(NUM_CLASSES, dtype=np.float64)
        self.fn_w = np.zeros_like(self.tp_w)
        self.cat_tp_w = np.zeros(len(INSTANCE_CATEGORIES), dtype=np.float64)
        self.cat_fn_w = np.zeros_like(self.cat_tp_w)

    @property
    def conf(self) -> ConfusionMatrix:
        """The matrix over the 19 classes and the ignored label ids (columns), whatever the inputs were."""
        out = ConfusionMatrix(NUM_CLASSES, IGNORE_INDEX, num_pred=NUM_COLUMNS)
        for ids, cm in self._conf.items():
            np.add.at(out.mat, (slice(None), self._spaces[ids].to_column), cm.mat)
        return out

    def _raw(self, pred: np.ndarray, ids: str, source: str) -> np.ndarray:
        """Prediction values checked against the label table, as indices into the raw space."""
        if ids not in self._spaces:
            raise ValueError(f"ids must be 'label' or 'train', got {ids!r}")
        pred = as_index(pred.reshape(-1))
        if not pred.size:
            return pred
        lo, hi = int(pred.min()), int(pred.max())
        if ids == "label":
            if lo < 0 or hi >= NUM_LABEL_IDS:
                raise EvaluationError(f"{source}: value {lo if lo < 0 else hi} is not a Cityscapes label id "
                                      f"(0..{NUM_LABEL_IDS - 1})")
            return pred
        if lo < 0:
            raise EvaluationError(f"{source}: value {lo} is not a Cityscapes train id")
        if hi < NUM_CLASSES:
            return pred
        bad = (pred >= NUM_CLASSES) & (pred != IGNORE_INDEX)
        if bad.any():
            raise EvaluationError(f"{source}: value {int(pred[bad][0])} is not a Cityscapes train id "
                                  f"(0..{NUM_CLASSES - 1} or {IGNORE_INDEX})")
        return np.minimum(pred, NUM_CLASSES)  # 255 -> 19, "no class"

    def update(self, pred, target, instances=None, ids: str = "train", source: str = "prediction") -> None:
        """Add one image (or a batch): ``pred`` label or train ids, ``target`` train ids, ``instances`` instanceIds."""
        try:
            pred, target = host_array(pred), host_array(target)
        except ValueError as exc:
            raise EvaluationError(f"{source}: {exc}") from None
        if pred.shape != target.shape:
            raise EvaluationError(f"{source}: prediction is {tuple(pred.shape)} but the ground truth is {tuple(target.shape)}")
        raw = self._raw(pred, ids, source)
        try:
            self._conf[ids].update(raw, target.reshape(-1))
        except ValueError as exc:
            raise EvaluationError(f"{source}: {exc}") from None
        self.images += 1
        if instances is not None:
            self._add_instances(host_array(instances), raw, ids, source)

    def _add_instances(self, instances: np.ndarray, raw: np.ndarray, ids: str, source: str) -> None:
        inst = instances.reshape(-1)
        if inst.shape != raw.shape:
            raise EvaluationError(f"{source}: instance ids have {inst.size} pixels, the prediction {raw.size}")
        if not inst.size:
            return
        inst = as_index(inst)
        lo, hi = int(inst.min()), int(inst.max())
        if lo < 0 or hi >= MAX_INSTANCE_ID:
            raise EvaluationError(f"{source}: instance id {lo if lo < 0 else hi} names no Cityscapes label")
        space = self._spaces[ids]
        size_p = space.size
        table = np.bincount(inst.astype(np.intp) * size_p + raw,
                            minlength=MAX_INSTANCE_ID * size_p).reshape(MAX_INSTANCE_ID, size_p)
        size = table.sum(1)
        invalid = (size > 0) & (self._inst_train == -2)
        if invalid.any():
            bad = int(invalid.nonzero()[0][0])
            raise EvaluationError(f"{source}: instance id {bad} belongs to '{ID_TO_LABEL[bad // 1000].name}', "
                                  "a class without instances")
        present = ((size > 0) & (self._inst_train >= 0)).nonzero()[0]
        if not present.size:
            return
        rows = table[present].astype(np.float64)
        n = size[present].astype(np.float64)
        hit = rows[np.arange(len(present)), space.hit_value[present]]
        weight = self._inst_avg[present] / n
        cls = self._inst_train[present]
        np.add.at(self.tp_w, cls, hit * weight)
        np.add.at(self.fn_w, cls, (n - hit) * weight)
        cat = self._inst_cat[present]
        has_cat = cat >= 0
        if has_cat.any():
            member = space.cat_member[cat[has_cat]].astype(np.float64)
            cat_hit = (rows[has_cat] * member).sum(1)
            w, nn = weight[has_cat], n[has_cat]
            np.add.at(self.cat_tp_w, cat[has_cat], cat_hit * w)
            np.add.at(self.cat_fn_w, cat[has_cat], (nn - cat_hit) * w)

    def all_reduce(self) -> None:
        """Sum over processes when running distributed (a no-op otherwise)."""
        from fasterseg.distributed import sum_array_in_place  # torch is loaded only here

        for cm in self._conf.values():
            cm.all_reduce()
        for a in (self.tp_w, self.fn_w, self.cat_tp_w, self.cat_fn_w):
            sum_array_in_place(a)

    def result(self) -> CityscapesResult:
        if self.images == 0:
            raise EvaluationError("no images were evaluated")
        conf = self.conf
        m = conf.mat
        tp_w, fn_w, cat_tp_w, cat_fn_w = self.tp_w, self.fn_w, self.cat_tp_w, self.cat_fn_w

        def ratio(tp: float, fp: float, fn: float) -> float:
            denom = tp + fp + fn
            return float(tp / denom) if denom else float("nan")

        class_iou, class_iiou = {}, {}
        for c, name in enumerate(CITYSCAPES_CLASSES):
            tp = int(m[c, c])
            fp = int(m[:, c].sum()) - tp
            class_iou[name] = ratio(tp, fp, int(m[c].sum()) - tp)
            class_iiou[name] = ratio(tp_w[c], fp, fn_w[c]) if name in INSTANCE_CLASSES else float("nan")
        category_iou, category_iiou = {}, {}
        for cat in CITYSCAPES_CATEGORIES:
            rows = _category_columns(cat, evaluated_only=True)  # evaluated classes: rows == their columns
            others = [r for r in range(NUM_CLASSES) if r not in rows]
            tp = int(m[np.ix_(rows, rows)].sum())
            category_iou[cat] = ratio(tp, int(m[np.ix_(others, rows)].sum()), int(m[rows].sum()) - tp)
            if cat in INSTANCE_CATEGORIES:
                k = INSTANCE_CATEGORIES.index(cat)
                fp = int(m[np.ix_(others, _category_columns(cat, evaluated_only=False))].sum())
                category_iiou[cat] = ratio(cat_tp_w[k], fp, cat_fn_w[k])
            else:
                category_iiou[cat] = float("nan")
        names = tuple(CITYSCAPES_CLASSES) + tuple(ID_TO_LABEL[lid].name for lid in COLUMN_LABEL_IDS[NUM_CLASSES:])
        return CityscapesResult(class_iou, class_iiou, category_iou, category_iiou,
                                pixel_accuracy=conf.pixel_accuracy(), mean_accuracy=conf.mean_accuracy(),
                                images=self.images, confusion=m, column_names=names)
