import torch
import torch.nn.functional as F

from fasterseg.train.losses import OhemCrossEntropy, distillation_kl


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
