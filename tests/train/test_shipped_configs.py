"""Every training config in configs/train/ loads into TrainConfig: a key renamed in the code, or a typo in a
file, fails here rather than at the start of a long run."""

from __future__ import annotations

from pathlib import Path

import pytest

from fasterseg.config import load_config
from fasterseg.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs" / "train").glob("*.yaml"))


def test_the_configs_are_found():
    assert {"camvid.yaml", "camvid_sgd180.yaml", "camvid_scratch.yaml", "cityscapes.yaml"} <= {c.name for c in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=[c.name for c in CONFIGS])
def test_config_loads(path):
    cfg = load_config(TrainConfig, path)
    assert cfg.epochs > 0 and cfg.batch_size > 0


def test_camvid_recipe_ends_at_full_size_and_keeps_the_average():
    """The chosen CamVid recipe (issue 31): the last 30% of its epochs at full size, the moving average kept
    (the file to ship), no auxiliary heads, and the 180-epoch recipe it replaced still loadable beside it."""
    cfg = load_config(TrainConfig, REPO / "configs/train/camvid.yaml")
    last_start, last_scale = cfg.data.resize_schedule[-1]
    assert last_scale == 1.0 and last_start <= 0.7 * cfg.epochs
    assert cfg.ema_decay > 0 and cfg.loss.aux_weight == 0 and cfg.data.crop_size == (360, 480)
    old = load_config(TrainConfig, REPO / "configs/train/camvid_sgd180.yaml")
    assert (old.epochs, old.optim.name, old.data.crop_size) == (180, "sgd", (288, 384))
