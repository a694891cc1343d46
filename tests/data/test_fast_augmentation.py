"""The training augmentation's fast paths against the plain computations they replace: the crop's
window of a resize against resizing the whole image then cropping, the shifted-view blur against a
grouped convolution, the one affine colour map against brightness, contrast, saturation and hue
applied one after another."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fasterseg.data.transforms import (Photometric, TrainTransform, gaussian_blur, resize_pair, resized_window,
                                       rotate_hue, to_tensors)

LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)


def _pair(h=37, w=53, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, h, w, generator=g), torch.randint(0, 11, (h, w), generator=g)


@pytest.mark.parametrize("size", [(74, 106), (46, 66), (59, 61), (30, 40), (37, 80)])
@pytest.mark.parametrize("corner", ["top_left", "bottom_right", "inside"])
def test_the_window_of_a_resize_is_the_whole_resize_cropped(size, corner):
    img, lab = _pair()
    window = (min(29, size[0]), min(31, size[1]))
    top, left = {"top_left": (0, 0), "bottom_right": (size[0] - window[0], size[1] - window[1]),
                 "inside": ((size[0] - window[0]) // 2, (size[1] - window[1]) // 3)}[corner]
    full_img, full_lab = resize_pair(img, lab, size)
    out_img, out_lab = resized_window(img, lab, size, top, left, window)
    expected_img = full_img[:, top: top + window[0], left: left + window[1]]
    assert out_img.shape == expected_img.shape
    torch.testing.assert_close(out_img, expected_img, atol=1e-5, rtol=0)
    assert torch.equal(out_lab, full_lab[top: top + window[0], left: left + window[1]])  # nearest: the same ids


def test_a_window_outside_the_resized_image_is_refused():
    img, lab = _pair()
    with pytest.raises(ValueError, match="outside"):
        resized_window(img, lab, (40, 60), 20, 0, (29, 31))


@pytest.mark.parametrize("sigma", [0.3, 1.0, 1.7])
def test_the_blur_equals_a_grouped_convolution_with_reflected_borders(sigma):
    img, _ = _pair()
    radius = max(1, math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(img[None], (radius,) * 4, mode="reflect")
    expected = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    expected = F.conv2d(expected, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]
    torch.testing.assert_close(gaussian_blur(img, sigma), expected, atol=1e-6, rtol=0)


def _colour_one_by_one(img: torch.Tensor, p: Photometric, u: list[float]) -> torch.Tensor:
    """The colour jitter as its definition reads, one adjustment at a time."""
    img = img * (1 + p.brightness * (2 * u[0] - 1))
    mean = (img * LUMA).sum(0).mean()
    img = mean + (img - mean) * (1 + p.contrast * (2 * u[1] - 1))
    gray = (img * LUMA).sum(0, keepdim=True)
    img = gray + (img - gray) * (1 + p.saturation * (2 * u[2] - 1))
    return rotate_hue(img, p.hue * (2 * u[3] - 1) * 2 * math.pi)


@pytest.mark.parametrize("seed", range(4))
def test_the_affine_colour_map_is_the_four_adjustments_in_order(seed):
    img, _ = _pair(seed=seed)
    jitter = Photometric(brightness=0.5, contrast=0.6, saturation=0.9, hue=0.3, noise=0.05, blur_prob=0.5)
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(7, generator=torch.Generator().manual_seed(seed)).tolist()  # the draw it makes first
    expected = _colour_one_by_one(img, jitter, u)
    if u[4] < jitter.blur_prob:
        expected = gaussian_blur(expected, sigma=max(0.1, jitter.blur_sigma * u[5]))
    torch.rand(7, generator=generator)
    expected = (expected + torch.randn(img.shape, generator=generator) * (jitter.noise * u[6])).clamp(0, 1)
    torch.testing.assert_close(jitter(img, torch.Generator().manual_seed(seed)), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("scale", [0.75, 1.5, 2.0])
def test_a_training_crop_is_the_resized_image_cropped_with_the_same_draws(scale):
    image = (np.random.default_rng(0).random((36, 48, 3)) * 255).astype(np.uint8)
    label = np.random.default_rng(1).integers(0, 11, (36, 48)).astype(np.uint8)
    transform = TrainTransform(crop_size=(24, 32), scales=(scale,), flip=False, mean=(0, 0, 0), std=(1, 1, 1))
    img, lab = transform(image, label, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    torch.randint(1, (1,), generator=g)  # the scale's draw (one choice)
    size = (int(36 * scale + 0.5), int(48 * scale + 0.5))
    top, left = int(torch.randint(size[0] - 24 + 1, (1,), generator=g)), int(torch.randint(size[1] - 32 + 1, (1,), generator=g))
    full_img, full_lab = resize_pair(*to_tensors(image, label), size)
    torch.testing.assert_close(img, full_img[:, top: top + 24, left: left + 32], atol=1e-5, rtol=0)
    assert torch.equal(lab, full_lab[top: top + 24, left: left + 32])
