"""OHEM on hand-computed cases."""

import math

import pytest
import torch

from fasterseg.search.loss import OhemCrossEntropy
from fasterseg.train.losses import ohem_cross_entropy


def _two_class_logits(p_class0):
    """Logits (1, 2, 1, n) whose softmax gives class 0 the probabilities ``p_class0``."""
    p = torch.tensor(p_class0)
    return torch.stack([torch.log(p), torch.log(1 - p)]).reshape(1, 2, 1, -1)


def test_only_pixels_at_or_below_the_threshold_count():
    logits = _two_class_logits([0.9, 0.6, 0.3, 0.8])
    target = torch.zeros(1, 1, 4, dtype=torch.long)
    # min_kept 2: the 2nd smallest probability is 0.6 <= 0.7, so the threshold stays 0.7:
    # pixels with p 0.6 and 0.3 are kept -> mean of -log 0.6 and -log 0.3.
    loss = ohem_cross_entropy(logits, target, thresh=0.7, min_kept=2)
    assert loss.item() == pytest.approx(-(math.log(0.6) + math.log(0.3)) / 2, rel=1e-6)


def test_threshold_rises_to_keep_min_kept_pixels():
    logits = _two_class_logits([0.9, 0.6, 0.3, 0.8])
    target = torch.zeros(1, 1, 4, dtype=torch.long)
    # min_kept 3: the 3rd smallest probability is 0.8 > 0.7 -> keep p <= 0.8.
    loss = ohem_cross_entropy(logits, target, thresh=0.7, min_kept=3)
    assert loss.item() == pytest.approx(-(math.log(0.6) + math.log(0.3) + math.log(0.8)) / 3, rel=1e-6)


def test_ignored_pixels_rank_as_solved_and_never_count():
    logits = _two_class_logits([0.2, 0.6, 0.3, 0.8])
    target = torch.tensor([[[255, 0, 0, 0]]])
    # Valid probabilities 0.6, 0.3, 0.8; the ignored pixel ranks as 1.0. min_kept 3 -> keep all valid.
    loss = ohem_cross_entropy(logits, target, thresh=0.7, min_kept=3)
    assert loss.item() == pytest.approx(-(math.log(0.6) + math.log(0.3) + math.log(0.8)) / 3, rel=1e-6)
    # More to keep than there are valid pixels: mining is off, plain CE over the valid ones.
    assert ohem_cross_entropy(logits, target, min_kept=4).item() == pytest.approx(loss.item(), rel=1e-6)


def test_all_ignored_gives_a_zero_in_the_graph():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = ohem_cross_entropy(logits, torch.full((1, 2, 2), 255), min_kept=1)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_min_kept_is_a_fraction_of_the_batch_pixels():
    logits = _two_class_logits([0.9, 0.6, 0.3, 0.8] * 4)  # 16 pixels
    target = torch.zeros(1, 1, 16, dtype=torch.long)
    # 1/16 of 16 pixels = 1 to keep at least; threshold 0.7 keeps the four 0.6 and four 0.3 pixels.
    expected = -(math.log(0.6) + math.log(0.3)) / 2
    assert OhemCrossEntropy()(logits, target).item() == pytest.approx(expected, rel=1e-6)
