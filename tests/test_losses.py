"""The recipe's losses (one module for the search and training) on hand-computed cases."""

import math

import pytest
import torch
import torch.nn.functional as F

from fasterseg.data.base import IGNORE_INDEX
from fasterseg.losses import OhemCrossEntropy, distillation_kl, ohem_cross_entropy


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
    assert OhemCrossEntropy(across_processes=True)(logits, target).item() == pytest.approx(expected, rel=1e-6)


def _logits_with_true_probs(probs):
    """Two-class logits (1, 2, 1, n) whose class-0 probabilities are ``probs``."""
    p = torch.tensor(probs, dtype=torch.float64)
    logit0 = torch.log(p) - torch.log1p(-p)
    return torch.stack([logit0, torch.zeros_like(logit0)]).view(1, 2, 1, -1)


def test_ohem_keeps_only_pixels_at_or_below_the_threshold():
    logits = _logits_with_true_probs([0.9, 0.6, 0.95, 0.3, 0.8, 0.7])
    target = torch.zeros(1, 1, 6, dtype=torch.long)
    loss = OhemCrossEntropy(thresh=0.7, min_kept=1)(logits, target)
    # Hard pixels: p <= 0.7 -> 0.6, 0.3, 0.7; loss is the mean of -log p over them.
    expected = -torch.log(torch.tensor([0.6, 0.3, 0.7], dtype=torch.float64)).mean()
    assert torch.allclose(loss, expected)


def test_ohem_raises_the_threshold_to_keep_min_kept_pixels():
    logits = _logits_with_true_probs([0.9, 0.6, 0.95, 0.3, 0.8, 0.7])
    target = torch.zeros(1, 1, 6, dtype=torch.long)
    loss = OhemCrossEntropy(thresh=0.7, min_kept=4)(logits, target)
    expected = -torch.log(torch.tensor([0.6, 0.3, 0.8, 0.7], dtype=torch.float64)).mean()
    assert torch.allclose(loss, expected)


def test_ohem_ignores_ignored_pixels_and_keeps_all_when_too_few_valid():
    logits = _logits_with_true_probs([0.9, 0.6, 0.95, 0.3])
    target = torch.tensor([0, 255, 0, 255]).view(1, 1, 4)
    # min_kept (3) > valid pixels (2): no mining, plain CE over the valid ones.
    loss = OhemCrossEntropy(thresh=0.7, min_kept=3)(logits, target)
    expected = -torch.log(torch.tensor([0.9, 0.95], dtype=torch.float64)).mean()
    assert torch.allclose(loss, expected)
    assert torch.equal(OhemCrossEntropy()(logits, torch.full_like(target, 255)), torch.zeros((), dtype=torch.float64))


def test_distillation_is_zero_for_identical_logits_and_positive_otherwise():
    torch.manual_seed(0)
    a = torch.randn(2, 5, 4, 4)
    assert distillation_kl(a, a.clone()).abs().item() < 1e-7
    b = torch.randn(2, 5, 4, 4)
    kl = distillation_kl(a, b)
    # Independent formula: sum_c t (log t - log s), averaged over every element.
    t, s = F.softmax(b, 1), F.softmax(a, 1)
    assert torch.allclose(kl, (t * (t.log() - s.log())).sum() / t.numel(), atol=1e-6)
    assert kl.item() > 0


@pytest.mark.parametrize("class_weight", [None, torch.tensor([1.0, 3.0, 0.5, 2.0])])
def test_ohem_without_mining_has_cross_entropys_value_and_gradient(class_weight):
    # The loss's hand-written backward against autograd through PyTorch's own cross-entropy.
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 5, 6), generator=gen)
    target[0, 0, :3] = IGNORE_INDEX
    ours_in, ref_in = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    ours = ohem_cross_entropy(ours_in, target, min_kept=0, class_weight=class_weight)
    ref = F.cross_entropy(ref_in, target, ignore_index=IGNORE_INDEX,
                          weight=None if class_weight is None else class_weight.double())
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_in.grad, ref_in.grad)


def test_mined_loss_gradient_passes_gradcheck():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 3, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (1, 4, 5), generator=gen)
    assert torch.autograd.gradcheck(lambda x: ohem_cross_entropy(x, target, thresh=0.5, min_kept=6), (logits,))
