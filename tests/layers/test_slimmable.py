"""Slimmable operators: at any width they compute what the plain operator of that width computes."""

import pytest
import torch
import torch.nn.functional as F

from fasterseg.layers.ops import OP_NAMES, build_op
from fasterseg.layers.rules import width_channels
from fasterseg.layers.slimmable import SlimBatchNorm2d, SlimConv2d, active_state, set_active_width

WIDTHS = (0.5, 0.75, 1.0)


def _randomise_bn(module):
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


CASES = [(name, stride) for name in OP_NAMES for stride in (1, 2) if not (name == "skip" and stride == 1)]


@pytest.mark.parametrize("name, stride", CASES)
@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("train", [False, True])
def test_slim_op_equals_the_plain_op_of_the_active_width(name, stride, index, train):
    torch.manual_seed(0)
    c_in_max, c_out_max = 16, 32
    slim = build_op(name, c_in_max, c_out_max, stride, widths=WIDTHS)
    _randomise_bn(slim)
    c_in = 12  # any input width: the weight is sliced to the channels that arrive
    c_out = width_channels(c_out_max, WIDTHS)[index]
    plain = build_op(name, c_in, c_out, stride)
    plain.load_state_dict(active_state(slim, plain, index))
    # Independent of active_state: the plain conv weights are the leading slice of the slim ones.
    for (key, value), (_, full) in zip(plain.state_dict().items(), slim.state_dict().items()):
        if key.endswith("conv1.weight"):
            assert torch.equal(value, full[: value.shape[0], :c_in])
    set_active_width(slim, index)
    slim.train(train)
    plain.train(train)
    x = torch.randn(2, c_in, 16, 20)
    with torch.no_grad():
        out = slim(x)
        expected = plain(x)
    assert out.shape == (2, c_out, 16 // stride, 20 // stride)
    assert torch.equal(out, expected)


def test_each_width_keeps_its_own_batch_norm_statistics():
    op = build_op("conv", 8, 16, 1, widths=WIDTHS).train()
    set_active_width(op, 0)
    op(torch.randn(2, 8, 8, 8) * 3 + 1)
    bns = op.bn1.bn
    assert [bn.num_features for bn in bns] == [8, 12, 16]
    assert not torch.equal(bns[0].running_mean, torch.zeros(8))
    assert torch.equal(bns[1].running_mean, torch.zeros(12)) and torch.equal(bns[2].running_mean, torch.zeros(16))


def test_slim_conv_is_a_sliced_convolution():
    torch.manual_seed(0)
    conv = SlimConv2d(6, 10, 3, 1, 1, out_per_width=[4, 10])
    conv.set_width(0)
    x = torch.randn(1, 3, 5, 5)
    # Hand-built: a 3-in, 4-out conv with the first rows/columns of the weight.
    expected = F.conv2d(x, conv.weight.detach()[:4, :3].contiguous(), padding=1)
    assert torch.equal(conv(x), expected)
    with pytest.raises(ValueError, match="at most 6"):
        conv(torch.randn(1, 7, 5, 5))


def test_batch_norm_rejects_a_width_it_does_not_hold():
    bn = SlimBatchNorm2d([4, 8])
    bn.set_width(0)
    with pytest.raises(ValueError, match="width choice 0 has 4"):
        bn(torch.randn(1, 8, 2, 2))


def test_the_stride_two_skip_needs_even_widths():
    with pytest.raises(ValueError, match="even c_out at every width"):
        build_op("skip", 8, 10, 2, widths=(0.5, 1.0))  # 5 channels at half width


def test_gradients_of_a_conv_used_at_several_widths_are_autograds_sums():
    """The in-place slice backward gives what plain slicing gives autograd: for a weight used at
    three widths in one loss, and accumulated over two backward passes."""
    from fasterseg.layers.slimmable import SlimConv2d, set_active_width

    torch.manual_seed(0)
    conv = SlimConv2d(6, 8, 3, 1, 1, out_per_width=(2, 5, 8))
    reference = conv.weight.detach().clone().requires_grad_(True)
    x = torch.randn(2, 6, 7, 9)
    for _ in range(2):  # .grad accumulates across backward passes, as for any parameter
        loss, ref_loss = 0, 0
        for index, c_out in enumerate((2, 5, 8)):
            set_active_width(conv, index)
            c_in = 4 if index == 1 else 6  # a narrower input too
            loss = loss + (conv(x[:, :c_in]) ** 2).sum() * (index + 1)
            ref = torch.nn.functional.conv2d(x[:, :c_in], reference[:c_out, :c_in], padding=1)
            ref_loss = ref_loss + (ref ** 2).sum() * (index + 1)
        loss.backward()
        ref_loss.backward()
        torch.testing.assert_close(conv.weight.grad, reference.grad, rtol=1e-5, atol=1e-5)
    conv.zero_grad(set_to_none=True)
    with torch.no_grad():  # no graph, no gradient: a plain view
        assert conv(x).shape == (2, 8, 7, 9) and conv.weight.grad is None
