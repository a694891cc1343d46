"""The training upsample as matrix products against PyTorch's own bilinear kernel."""

import pytest
import torch
import torch.nn.functional as F

from fasterseg.layers.upsample import interpolation_matrix, resize_bilinear, upsample_aligned


def _assert_same_values_and_gradients(ours_fn, reference_fn, shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen)
    ref_x, our_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ref, ours = reference_fn(ref_x), ours_fn(our_x)
    assert ours.shape == ref.shape and ours.is_contiguous()
    # both weight at most two neighbours per axis; PyTorch computes each sample position in
    # float32 (scale * i), ours in float64, so weights differ by a few 1e-7 times the step
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=5e-5)
    upstream = torch.randn(ref.shape, generator=gen)
    (ref * upstream).sum().backward()
    (ours * upstream).sum().backward()
    torch.testing.assert_close(our_x.grad, ref_x.grad, rtol=1e-4, atol=1e-4)


def test_interpolation_matrix_by_hand():
    # two samples 0 and 3 stretched to four outputs with aligned corners: 0, 1, 2, 3
    m = interpolation_matrix(2, 4)
    assert torch.equal(m @ torch.tensor([0.0, 3.0]), torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert torch.allclose(m.sum(1), torch.ones(4))
    assert torch.equal(interpolation_matrix(3, 1), torch.tensor([[1.0, 0.0, 0.0]]))


@pytest.mark.parametrize("shape,scale,crop", [
    ((2, 3, 5, 7), 8, None),
    ((2, 11, 36, 48), 8, (288, 384)),
    ((1, 4, 3, 4), 16, (40, 50)),   # the 1/16 head of a padded input, cropped back
    ((1, 4, 2, 2), 32, (33, 64)),
    ((1, 2, 1, 3), 4, None),        # a single row: every output row samples it
])
def test_same_values_and_gradients_as_interpolate(shape, scale, crop):
    def reference(x):
        out = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=True)
        return out if crop is None else out[..., :crop[0], :crop[1]]

    _assert_same_values_and_gradients(lambda x: upsample_aligned(x, scale, crop), reference, shape)


def test_float32_under_autocast_and_channels_last_input():
    x = torch.randn(2, 3, 4, 6).to(memory_format=torch.channels_last).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = upsample_aligned(x, 8, (30, 40))
    ref = F.interpolate(x.float(), scale_factor=8, mode="bilinear", align_corners=True)[..., :30, :40]
    assert out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=5e-5)


@pytest.mark.parametrize("shape,size", [((2, 3, 36, 48), (288, 384)), ((1, 2, 5, 7), (41, 29)), ((1, 1, 4, 4), (2, 3))])
def test_half_pixel_convention_as_interpolate(shape, size):
    # align_corners=False, as the hand-designed baselines resize (downsizing included)
    _assert_same_values_and_gradients(lambda x: resize_bilinear(x, size, align_corners=False),
                                      lambda x: F.interpolate(x, size=size, mode="bilinear", align_corners=False), shape)


def test_refuses_a_non_image_tensor():
    with pytest.raises(ValueError, match="expected \\(N, C, H, W\\)"):
        upsample_aligned(torch.zeros(3, 4, 5), 8)
