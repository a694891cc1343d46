import pytest
import torch
from torch import nn

from fasterseg.infer.fold import fold_batchnorm, fold_conv_bn
from tests.infer.conftest import assert_same_labels, reference_labels, tiny_model


def test_fold_conv_bn_matches_the_formula_by_hand():
    conv = nn.Conv2d(1, 1, 1, bias=False)
    conv.weight.data.fill_(2.0)
    bn = nn.BatchNorm2d(1, eps=0.0).eval()
    bn.running_mean.fill_(1.0)
    bn.running_var.fill_(4.0)
    bn.weight.data.fill_(3.0)
    bn.bias.data.fill_(0.5)
    fused = fold_conv_bn(conv, bn)
    # bn(conv(x)) = 3 * (2x - 1) / 2 + 0.5 = 3x - 1
    assert fused.weight.item() == pytest.approx(3.0)
    assert fused.bias.item() == pytest.approx(-1.0)


@pytest.mark.parametrize("ends", [(2, 1), (2, 1, 0), (0,)])
def test_folded_network_has_no_batchnorm_and_computes_the_same(ends):
    model = tiny_model(ends)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "folding must not modify the original"
    x = torch.randn(2, 3, 70, 100)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-4, rtol=1e-4)
    labels, margin = reference_labels(model, x)
    with torch.no_grad():
        assert_same_labels(folded(x).argmax(1), labels, margin)


def test_strided_skip_folds_each_half_of_its_batchnorm():
    from fasterseg.layers.ops import Skip

    torch.manual_seed(0)
    skip = Skip(4, 6, stride=2).eval()
    skip.bn.running_mean.copy_(torch.randn(6))
    skip.bn.running_var.copy_(torch.rand(6) + 0.5)
    skip.bn.weight.data.copy_(torch.randn(6))
    x = torch.randn(1, 4, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(skip)(x), skip(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_every_candidate_operator_folds(stride):
    """The contract a new operator in layers/ops.py signs: its BatchNorms sit where folding finds
    them (after a Conv2d in an nn.Sequential, or as conv/bn, conv1/bn1, conv2/bn2 attributes),
    so the deploy paths fold it away and compute the same."""
    from fasterseg.layers.ops import OP_NAMES, build_op
    from tests.infer.conftest import randomise_batchnorm

    torch.manual_seed(0)
    for name in OP_NAMES:
        op = build_op(name, 8, 8 if stride == 1 else 16, stride)  # a stride-1 skip keeps its channels
        randomise_batchnorm(op)
        op.eval()
        folded = fold_batchnorm(op)  # strict: raises naming a BatchNorm it cannot fold
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules()), name
        x = torch.randn(2, 8, 24, 32)
        with torch.no_grad():
            torch.testing.assert_close(folded(x), op(x), atol=1e-4, rtol=1e-4, msg=lambda m: f"{name}: {m}")
