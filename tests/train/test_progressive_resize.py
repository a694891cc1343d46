"""Progressive resizing (``data.resize_schedule``): the factor by epoch, the crops each epoch
trains on (in the training process and in a loader process), and a resume across a change of
resolution that continues exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fasterseg.config import ConfigError
from fasterseg.data.transforms import TrainTransform
from fasterseg.distributed import DistInfo
from fasterseg.train.compact import read_compact
from fasterseg.train.config import resize_factor
from fasterseg.train.trainer import CHECKPOINT, _read_data, train
from tests.helpers import toy_train_config

SCHEDULE = "data.resize_schedule=[[0, 0.5], [1, 1.0]]"


def test_the_factor_by_epoch():
    schedule = ((0, 0.5), (3, 0.75), (6, 1.0))
    assert [resize_factor(schedule, e) for e in range(8)] == [0.5] * 3 + [0.75] * 3 + [1.0] * 2
    assert [resize_factor(((2, 0.5),), e) for e in range(4)] == [1.0, 1.0, 0.5, 0.5]  # full size before the first entry
    assert resize_factor((), 5) == 1.0


@pytest.mark.parametrize("bad", ["[[1, 0.5], [0, 1.0]]", "[[0, 0.5], [0, 1.0]]", "[[0, 0]]", "[[-1, 0.5]]"])
def test_a_schedule_out_of_order_or_without_a_positive_factor_is_refused(toy, tmp_path, bad):
    with pytest.raises((ValueError, ConfigError), match="resize_schedule"):
        toy_train_config(toy, tmp_path, "bad", f"data.resize_schedule={bad}")


def test_a_resized_transform_crops_the_scene_at_the_lower_resolution():
    transform = TrainTransform(crop_size=(36, 48), scales=(1.0,), flip=False)
    half = transform.resized(0.5)
    assert half.crop_size == (18, 24) and half.base_scale == 0.5 and transform.resized(1.0) is transform
    image = np.zeros((36, 48, 3), np.uint8)
    image[:, 24:] = 255  # right half white: at half resolution the whole frame is the half-size crop
    label = np.zeros((36, 48), np.uint8)
    label[:, 24:] = 1
    img, lab = half(image, label, torch.Generator().manual_seed(0))
    assert img.shape == (3, 18, 24) and lab.shape == (18, 24)
    assert (lab[:, :12] == 0).all() and (lab[:, 12:] == 1).all()


@pytest.mark.parametrize("workers", [0, 1])
def test_each_epoch_trains_on_its_scheduled_crop_size(toy, tmp_path, workers):
    cfg = toy_train_config(toy, tmp_path, "sizes", SCHEDULE, f"data.workers={workers}")
    data = _read_data(cfg, torch.device("cpu"), DistInfo(), show_progress=False)
    sizes = []
    for epoch in range(2):
        data.start_epoch(epoch, cfg.data.resize_schedule)
        images, labels = next(iter(data.loader))
        sizes.append((tuple(images.shape[2:]), tuple(labels.shape[1:])))
    assert sizes == [((32, 32), (32, 32)), ((64, 64), (64, 64))]


def test_a_resume_across_the_change_of_resolution_continues_exactly(toy, tmp_path):
    full = train(toy_train_config(toy, tmp_path, "full", SCHEDULE, "epochs=2"), show_progress=False)
    train(toy_train_config(toy, tmp_path, "split", SCHEDULE, "epochs=1"), show_progress=False)
    resumed = train(toy_train_config(toy, tmp_path, "split", SCHEDULE, "epochs=2"), resume=True, show_progress=False)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    a, b = read_compact(full.run_dir / CHECKPOINT)[0].model, read_compact(resumed.run_dir / CHECKPOINT)[0].model
    for key in a:
        assert torch.equal(a[key], b[key]), key
