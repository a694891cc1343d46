"""Mixing two crops of a batch (data.mix): what is pasted where, checked pixel by pixel against
the unmixed batch."""

from __future__ import annotations

import pytest
import torch

from fasterseg.data.mixing import BatchMix


def _batch(n=4, h=24, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, 3, h, w, generator=g)
    lab = torch.randint(0, 11, (n, h, w), generator=g)
    lab[:, :3] = 255  # an ignored band
    for i in range(n):  # each crop shows a few classes in blocks (so classmix has objects to move)
        lab[i, 3:, : w // 2] = i
        lab[i, 3:, w // 2:] = 10 - i
    return img, lab


def _pasted(out_img, out_lab, img, lab, i):
    """Where crop i now holds its partner's pixels (image and label alike), and nowhere else changed."""
    j = (i + 1) % img.shape[0]
    from_partner = (out_img[i] == img[j]).all(0) & (out_lab[i] == lab[j])
    from_self = (out_img[i] == img[i]).all(0) & (out_lab[i] == lab[i])
    assert (from_partner | from_self).all()
    return from_partner & ~from_self


def test_cutmix_pastes_one_rectangle_of_the_next_crop():
    img, lab = _batch()
    out_img, out_lab = BatchMix("cutmix", prob=1.0)(img, lab, torch.Generator().manual_seed(1))
    assert torch.equal(img, _batch()[0]) and torch.equal(lab, _batch()[1])  # the inputs are kept
    areas = []
    for i in range(4):
        where = _pasted(out_img, out_lab, img, lab, i)
        if where.any():
            rows, cols = where.any(1).nonzero(), where.any(0).nonzero()
            box = where[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
            assert box.all()  # one filled rectangle
            areas.append(float(where.float().mean()))
    assert areas and max(areas) < 1.0


def test_classmix_moves_whole_classes_of_the_next_crop():
    img, lab = _batch()
    out_img, out_lab = BatchMix("classmix", prob=1.0)(img, lab, torch.Generator().manual_seed(2))
    for i in range(4):
        j = (i + 1) % 4
        where = _pasted(out_img, out_lab, img, lab, i)
        moved = set(lab[j][where].tolist())
        assert len(moved) == 1 and 255 not in moved  # half of the partner's two classes, never "ignored"
        (cls,) = moved
        assert torch.equal(where, (lab[j] == cls) & ~((img[i] == img[j]).all(0) & (lab[i] == lab[j])))  # every pixel of it


def test_off_or_improbable_leaves_the_batch_and_the_same_seed_mixes_alike():
    img, lab = _batch()
    for mix in (BatchMix("none", 1.0), BatchMix("cutmix", 0.0)):
        a, b = mix(img, lab, torch.Generator().manual_seed(0))
        assert torch.equal(a, img) and torch.equal(b, lab)
    mix = BatchMix("classmix", 0.5)
    first = mix(img, lab, torch.Generator().manual_seed(7))
    again = mix(img, lab, torch.Generator().manual_seed(7))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


@pytest.mark.parametrize("bad", [("blend", 0.5), ("cutmix", 1.5)])
def test_a_bad_mode_or_probability_is_named(bad):
    with pytest.raises(ValueError, match="data.mix"):
        BatchMix(*bad)
