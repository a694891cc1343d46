import pytest
import torch
import torch.nn.functional as F

from fasterseg.genotype import Branch, Genotype
from fasterseg.nets.network import FasterSegNet, init_weights, plan_cells


def tiny_genotype(ends=(2, 1), num_classes=5) -> Genotype:
    branches = {
        2: Branch(2, ("conv", "conv_2x", "conv_downup", "conv_2x_downup", "conv"), (0, 0, 1, 1, 2), (0.5, 0.5, 0.5, 0.5)),
        1: Branch(1, ("conv", "conv_2x", "skip", "conv"), (0, 0, 1, 1), (0.5, 0.5, 0.5)),
        0: Branch(0, ("conv", "conv_downup", "conv"), (0, 0, 0), (0.5, 1.0)),
    }
    return Genotype(tuple(branches[e] for e in ends), num_classes=num_classes, base_channels=4,
                    stem_width=0.5, head_width=0.5)


def test_shared_prefix_is_computed_once():
    plan = plan_cells(tiny_genotype())
    # Layers 0 and 1 agree in op, next scale and width -> one cell for both branches.
    assert [s.branches for s in plan[0]] == [(0, 1)]
    assert [s.branches for s in plan[1]] == [(0, 1)]
    # Layer 2 differs in op -> separate cells from here on, even if later layers agree.
    assert [s.branches for s in plan[2]] == [(0,), (1,)]


@pytest.mark.parametrize("ends", [(2, 1), (2, 0), (1,), (0,), (2,), (2, 1, 0)])
def test_output_shapes_in_both_modes(ends):
    torch.manual_seed(0)
    model = FasterSegNet(tiny_genotype(ends))
    init_weights(model)
    x = torch.randn(2, 3, 64, 96)
    model.eval()
    assert model(x).shape == (2, 5, 64, 96)
    model.train()
    pred8, pred16, pred32 = model(x)
    assert pred8.shape == (2, 5, 64, 96)
    assert (pred16 is not None) == (1 in ends or 2 in ends)
    assert (pred32 is not None) == (2 in ends)


def test_sizes_that_are_not_multiples_of_32_are_padded_and_cropped():
    torch.manual_seed(0)
    model = FasterSegNet(tiny_genotype()).eval()
    init_weights(model)
    x = torch.randn(1, 3, 50, 77)
    with torch.no_grad():
        out = model(x)
        # The official network needs multiples of 32: pad by hand, run, crop.
        padded = model(F.pad(x, (0, 96 - 77, 0, 64 - 50)))
    assert out.shape == (1, 5, 50, 77)
    torch.testing.assert_close(out, padded[..., :50, :77])


def test_gradients_reach_every_parameter_in_train_mode():
    torch.manual_seed(0)
    model = FasterSegNet(tiny_genotype()).train()
    init_weights(model)
    pred8, pred16, pred32 = model(torch.randn(2, 3, 64, 64))
    (pred8.mean() + pred16.mean() + pred32.mean()).backward()
    without_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert without_grad == []


def test_rejects_non_image_input():
    model = FasterSegNet(tiny_genotype()).eval()
    with pytest.raises(ValueError, match="N, 3, H, W"):
        model(torch.randn(1, 1, 64, 64))
