"""Scorers: one per kind of dataset, all fed image by image, all ending in a result object.

Datasets with Cityscapes instances get :class:`~fasterseg.evaluate.cityscapes.CityscapesScorer`
(IoU and iIoU of classes and categories); every other dataset gets :class:`SegmentationScorer`
(IoU, pixel accuracy, mean accuracy). :func:`make_scorer` picks, so its callers (the evaluation
of a prediction folder in :mod:`fasterseg.evaluate.predictions`, and :func:`score_dataset` for
``eval --model`` and training's validation) never need to know which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fasterseg.data.base import DatasetInfo
from fasterseg.evaluate.cityscapes import CityscapesResult, CityscapesScorer
from fasterseg.errors import EvaluationError
from fasterseg.evaluate.confusion import ConfusionMatrix, host_array


@dataclass
class SegmentationResult:
    """Scores of a dataset without instances, as fractions; NaN where undefined."""

    class_iou: dict[str, float]
    class_accuracy: dict[str, float]
    pixel_accuracy: float
    mean_accuracy: float
    images: int
    confusion: np.ndarray = field(repr=False)
    column_names: tuple[str, ...] = field(repr=False, default=())

    @property
    def miou(self) -> float:
        valid = [v for v in self.class_iou.values() if not np.isnan(v)]
        return float(np.mean(valid)) if valid else float("nan")

    @property
    def averages(self) -> dict[str, float]:
        return {"IoU Classes": self.miou, "Pixel Accuracy": self.pixel_accuracy, "Mean Accuracy": self.mean_accuracy}


class SegmentationScorer:
    """IoU, pixel and mean accuracy from one confusion matrix of train ids."""

    def __init__(self, info: DatasetInfo):
        self.info = info
        self.conf = ConfusionMatrix(info.num_classes, info.ignore_index)
        self.images = 0

    def update(self, pred, target, instances=None, ids: str = "train", source: str = "prediction") -> None:
        """Add one image (or a batch) of class indices: arrays or tensors on any device."""
        try:
            pred, target = host_array(pred), host_array(target)
        except ValueError as exc:
            raise EvaluationError(f"{source}: {exc}") from None
        if pred.shape != target.shape:
            raise EvaluationError(f"{source}: prediction is {tuple(pred.shape)} but the ground truth is {tuple(target.shape)}")
        if pred.size:
            lo, hi = int(pred.min()), int(pred.max())
            if lo < 0 or hi >= self.info.num_classes:
                raise EvaluationError(f"{source}: value {lo if lo < 0 else hi} is not a class index of "
                                      f"{self.info.name} (0..{self.info.num_classes - 1})")
        try:
            self.conf.update(pred, target)
        except ValueError as exc:
            raise EvaluationError(f"{source}: {exc}") from None
        self.images += 1

    def all_reduce(self) -> None:
        self.conf.all_reduce()

    def result(self) -> SegmentationResult:
        if self.images == 0 and not self.conf.mat.any():  # (summed over processes, a share may be empty)
            raise EvaluationError("no images were evaluated")
        names = self.info.class_names
        return SegmentationResult(
            class_iou=dict(zip(names, self.conf.iou().tolist())),
            class_accuracy=dict(zip(names, self.conf.class_accuracy().tolist())),
            pixel_accuracy=self.conf.pixel_accuracy(), mean_accuracy=self.conf.mean_accuracy(),
            images=self.images, confusion=self.conf.mat.copy(), column_names=tuple(names))


def make_scorer(dataset, info: DatasetInfo | None = None):
    """The Cityscapes scorer for datasets with Cityscapes instance ids, the plain one otherwise
    (for ``info``'s classes, by default the dataset's)."""
    if getattr(dataset, "has_instances", False):
        return CityscapesScorer()
    return SegmentationScorer(info or dataset.info)


Result = CityscapesResult | SegmentationResult


def score_dataset(predict, dataset, indices=None, ids: str = "train", progress: bool = False,
                  all_reduce: bool = False, desc: str = "eval", outputs: int = 1, truth=None,
                  info: DatasetInfo | None = None):
    """Score ``predict(i) -> (H, W) ids`` over a dataset's images with the dataset's own scorer.

    The one loop shared by every source of predictions (``eval --model``, training's validation,
    the supernet's outputs; a folder of files goes through the same scorers): ground truth comes
    from the dataset (train ids, and instance ids where it has them), so model evaluation gets
    iIoU on Cityscapes for free. ``indices`` limits the images (e.g. one process's share);
    ``all_reduce`` then sums the counts of every process first, so that all of them return the
    whole split's scores. A dataset without ``load_label`` (the decoded cache) gives its labels as
    the second item of ``dataset[i]``, or ``truth(i)`` does (called after ``predict(i)``). With
    ``outputs`` > 1, ``predict`` gives that many predictions per image (a supernet's five outputs
    from one pass) and a list of results comes back, one per output.
    """
    from tqdm import tqdm

    scorers = [make_scorer(dataset, info) for _ in range(outputs)]
    with_instances = getattr(dataset, "has_instances", False)
    label = truth or (dataset.load_label if hasattr(dataset, "load_label") else (lambda i: dataset[i][1]))
    name = dataset.name if hasattr(dataset, "name") else str
    for i in tqdm(range(len(dataset)) if indices is None else indices, desc=desc, unit="img", leave=False,
                  disable=not progress):
        predictions = predict(i)
        target = label(i)
        inst = dataset.load_instances(i) if with_instances else None
        for scorer, prediction in zip(scorers, [predictions] if outputs == 1 else predictions, strict=True):
            scorer.update(prediction, target, inst, ids=ids, source=name(i))
    results = []
    for scorer in scorers:
        if all_reduce:
            scorer.all_reduce()
        results.append(scorer.result())
    return results[0] if outputs == 1 else results
