"""Photometric augmentation: what each setting does, and the same draw for the same seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fasterseg.data.transforms import Photometric, TrainTransform, gaussian_blur, rotate_hue


def _image(seed=0):
    return torch.rand(3, 16, 20, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.1


def test_brightness_scales_every_value_by_one_factor_in_range():
    img = _image()
    out = Photometric(brightness=0.4)(img, torch.Generator().manual_seed(3))
    factor = (out / img).flatten()
    assert torch.allclose(factor, factor[0].expand_as(factor), atol=1e-5)
    assert 0.6 <= float(factor[0]) <= 1.4 and abs(float(factor[0]) - 1) > 1e-3


def test_saturation_zero_factor_range_keeps_grey_pixels_grey():
    grey = torch.full((3, 4, 4), 0.5)
    out = Photometric(saturation=0.9, hue=0.5)(grey, torch.Generator().manual_seed(1))
    assert torch.allclose(out, grey, atol=1e-5)


def test_hue_rotation_by_a_full_turn_is_the_identity_and_keeps_luma():
    img = _image()
    assert torch.allclose(rotate_hue(img, 2 * math.pi), img, atol=1e-5)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    turned = rotate_hue(img, 1.0)
    assert torch.allclose((turned * luma).sum(0), (img * luma).sum(0), atol=1e-5)
    assert (turned - img).abs().max() > 0.01


def test_blur_keeps_a_constant_image_and_the_mean():
    flat = torch.full((3, 9, 9), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.2), flat, atol=1e-6)
    img = _image()
    blurred = gaussian_blur(img, 1.0)
    assert blurred.shape == img.shape and blurred.std() < img.std()


def test_the_same_generator_seed_gives_the_same_augmented_sample():
    transform = TrainTransform(crop_size=(12, 16), photometric=Photometric(0.3, 0.3, 0.3, 0.05, 0.5, 1.0, 0.05))
    image = (np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)
    label = np.random.default_rng(1).integers(0, 5, (20, 24)).astype(np.uint8)
    a = transform(image, label, torch.Generator().manual_seed(7))
    b = transform(image, label, torch.Generator().manual_seed(7))
    c = transform(image, label, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_off_by_default_and_the_geometry_is_unchanged_by_it():
    image = (np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)
    label = np.random.default_rng(1).integers(0, 5, (20, 24)).astype(np.uint8)
    plain = TrainTransform(crop_size=(12, 16))
    jittered = TrainTransform(crop_size=(12, 16), photometric=Photometric(brightness=0.5))
    assert not plain.photometric.enabled
    a = plain(image, label, torch.Generator().manual_seed(5))
    b = jittered(image, label, torch.Generator().manual_seed(5))
    assert torch.equal(a[1], b[1])  # same crop and flip: the jitter draws after the geometry
    assert not torch.equal(a[0], b[0])


def test_padding_normalises_to_exactly_zero():
    transform = TrainTransform(crop_size=(30, 30), scales=(1.0,), flip=False)
    image = np.full((10, 10, 3), 200, np.uint8)
    img, lab = transform(image, np.zeros((10, 10), np.uint8), torch.Generator().manual_seed(0))
    assert (lab == 255).sum() == 30 * 30 - 100
    assert (img[:, lab == 255] == 0).all()


@pytest.mark.parametrize("bad", [dict(brightness=1.0), dict(hue=0.6), dict(blur_prob=2.0), dict(noise=-1.0)])
def test_out_of_range_settings_are_refused(bad):
    with pytest.raises(ValueError, match="photometric"):
        Photometric(**bad)
