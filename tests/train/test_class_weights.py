"""Class weights computed by hand on a small label set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fasterseg.train.class_weights import class_weights, label_statistics


class Labels:
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return None, self.labels[i]


# image 1: 6 px of class 0, 2 of class 1; image 2: 4 px of class 0, 3 of class 2, 1 ignored.
LABELS = Labels([np.array([[0, 0, 0, 0], [0, 0, 1, 1]], np.uint8),
                 np.array([[0, 0, 0, 0], [2, 2, 2, 255]], np.uint8)])


def test_statistics_count_pixels_and_the_images_each_class_is_in():
    pixels, present_in = label_statistics(LABELS, num_classes=4, ignore_index=255)
    assert pixels.tolist() == [10, 2, 3, 0]
    assert present_in.tolist() == [8 + 7, 8, 7, 0]


def test_median_frequency_by_hand():
    w = class_weights("median_frequency", *label_statistics(LABELS, 4, 255))
    freq = [10 / 15, 2 / 8, 3 / 7]  # median 3/7
    expected = [(3 / 7) / f for f in freq] + [1.0]  # the absent class weighs 1
    assert w.tolist() == pytest.approx(expected, rel=1e-6)


def test_inverse_log_by_hand():
    w = class_weights("inverse_log", *label_statistics(LABELS, 4, 255))
    expected = [1 / math.log(1.02 + p) for p in (10 / 15, 2 / 15, 3 / 15)] + [1.0]
    assert w.tolist() == pytest.approx(expected, rel=1e-6)


def test_the_weighted_ohem_loss_is_weighted_cross_entropy_over_kept_pixels():
    from fasterseg.losses import OhemCrossEntropy

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 6, generator=g)
    target = torch.randint(0, 4, (2, 6, 6), generator=g)
    target[0, 0] = 255
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0])
    loss = OhemCrossEntropy(thresh=1.1, min_kept=0, class_weight=weight)(logits, target)  # keeps every valid pixel
    expected = torch.nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=255)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_inverse_log_offset_by_hand():
    """The from-scratch CamVid recipes' 1 / ln(1.10 + p): a milder spread than ENet's 1.02."""
    w = class_weights("inverse_log", *label_statistics(LABELS, 4, 255), offset=1.10)
    shares = [10 / 15, 2 / 15, 3 / 15]
    assert w.tolist() == pytest.approx([1 / math.log(1.10 + p) for p in shares] + [1.0], rel=1e-6)
    assert max(w.tolist()) <= 1 / math.log(1.10)
