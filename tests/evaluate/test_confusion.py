"""The confusion matrix on hand-computed cases, fed NumPy arrays or torch tensors."""

import math

import numpy as np
import pytest
import torch

from fasterseg.evaluate.confusion import ConfusionMatrix


def test_hand_computed_three_classes():
    cm = ConfusionMatrix(3)
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 0]])
    cm.update(pred, target)
    assert cm.mat.tolist() == [[1, 1, 0], [1, 2, 0], [1, 0, 1]]
    # class 0: tp 1, fp 2, fn 1 -> 1/4; class 1: tp 2, fp 1, fn 1 -> 1/2; class 2: tp 1, fp 0, fn 1 -> 1/2
    assert cm.iou().tolist() == pytest.approx([0.25, 0.5, 0.5])
    assert cm.miou() == pytest.approx(5 / 12)
    assert cm.pixel_accuracy() == pytest.approx(4 / 7)
    assert cm.class_accuracy().tolist() == pytest.approx([0.5, 2 / 3, 0.5])
    assert cm.mean_accuracy() == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)


def test_absent_class_is_nan_and_left_out_of_the_mean():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 1]), np.array([0, 1], np.uint8))
    iou = cm.iou()
    assert math.isnan(iou[2]) and cm.miou() == 1.0


def test_extra_prediction_columns_are_false_negatives():
    cm = ConfusionMatrix(2, num_pred=3)
    cm.update(np.array([0, 2, 1, 1], np.uint8), np.array([0, 0, 1, 255], np.uint8))
    assert cm.mat.tolist() == [[1, 0, 1], [0, 1, 0]]
    assert cm.iou().tolist() == pytest.approx([0.5, 1.0])
    assert cm.pixel_accuracy() == pytest.approx(2 / 3)


def test_values_outside_the_classes_are_errors_but_ignored_pixels_are_not_checked():
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([7]), torch.tensor([255]))  # prediction under an ignored pixel: not counted
    assert cm.mat.sum() == 0
    with pytest.raises(ValueError, match="predicted value 2"):
        cm.update(torch.tensor([2]), torch.tensor([0]))
    with pytest.raises(ValueError, match="ground truth value 5"):
        cm.update(torch.tensor([0]), torch.tensor([5]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0]))


def test_arrays_and_tensors_of_any_integer_type_count_alike():
    target = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    counts = []
    for p, t in ((pred, target), (pred.astype(np.uint8), target.astype(np.uint8)),
                 (torch.from_numpy(pred), torch.from_numpy(target).to(torch.uint8)),
                 (torch.from_numpy(pred).to(torch.int16), torch.from_numpy(target).to(torch.int32))):
        cm = ConfusionMatrix(3)
        cm.update(p, t)
        counts.append(cm.mat.tolist())
    assert all(c == [[1, 1, 0], [1, 2, 0], [1, 0, 1]] for c in counts)
    with pytest.raises(ValueError, match="integer ids"):
        ConfusionMatrix(3).update(torch.zeros(2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer ids"):
        ConfusionMatrix(3).update(np.zeros(2), np.zeros(2, np.int64))
