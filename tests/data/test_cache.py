"""The decoded-split cache: the arrays decoding gives, rebuilt when a file changes, never half-written."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from fasterseg.data.base import ConcatDataset
from fasterseg.errors import DatasetError
from fasterseg.data.cache import cached
from fasterseg.data.registry import build_dataset

from tests.helpers import write_toy_camvid


@pytest.fixture()
def toy(tmp_path):
    return write_toy_camvid(tmp_path / "camvid", n_train=5, n_val=3)


def test_cached_arrays_equal_decoded_ones(toy, tmp_path):
    decoded = build_dataset(toy, "train")
    cache = cached(decoded, tmp_path / "cache", show_progress=False)
    assert len(cache) == len(decoded)
    for i in range(len(decoded)):
        image, label = decoded[i]
        c_image, c_label = cache[i]
        assert np.array_equal(c_image, image) and c_image.dtype == np.uint8
        assert np.array_equal(c_label, label)
        assert cache.name(i) == decoded.name(i)
    # a second run reuses the file instead of decoding again
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    again = cached(build_dataset(toy, "train"), tmp_path / "cache", show_progress=False)
    assert again.path == cache.path and sorted(p.name for p in (tmp_path / "cache").iterdir()) == files


def test_a_changed_file_rebuilds_the_cache_and_drops_the_stale_one(toy, tmp_path):
    first = cached(build_dataset(toy, "train"), tmp_path / "cache", show_progress=False)
    root = build_dataset(toy, "train").pairs[2][1]
    label = np.array(Image.open(root))
    label[:4, :4] = 5  # a real edit of one label file
    Image.fromarray(label).save(root)
    os.utime(root, ns=(os.stat(root).st_atime_ns, os.stat(root).st_mtime_ns + 10**9))
    second = cached(build_dataset(toy, "train"), tmp_path / "cache", show_progress=False)
    assert second.path != first.path and not first.path.exists()
    assert np.array_equal(second[2][1], build_dataset(toy, "train")[2][1])
    assert (second[2][1][:4, :4] == 5).all()
    # the other split's cache is a different split, not a stale copy: both stay
    val = cached(build_dataset(toy, "val"), tmp_path / "cache", show_progress=False)
    assert val.path.exists() and second.path.exists()


def test_an_unreadable_file_leaves_no_cache_behind(toy, tmp_path):
    dataset = build_dataset(toy, "train")
    dataset.pairs[3][0].write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot decode"):
        cached(dataset, tmp_path / "cache", show_progress=False)
    assert list((tmp_path / "cache").glob("*")) == []


def test_concatenated_splits_visit_every_part(toy, tmp_path):
    train, val = build_dataset(toy, "train"), build_dataset(toy, "val")
    both = ConcatDataset([cached(train, tmp_path / "c", False), val])
    assert len(both) == len(train) + len(val)
    assert [both.name(i) for i in range(len(both))] == [train.name(i) for i in range(len(train))] + [val.name(i) for i in range(len(val))]
    assert np.array_equal(both[len(train)][1], val[0][1])
    with pytest.raises(IndexError):
        both[len(both)]
