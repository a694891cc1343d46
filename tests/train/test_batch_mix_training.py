"""Training with data.mix (the mixing itself: tests/data/test_mixing.py): it changes what a step
sees, and a resumed run mixes exactly as the uninterrupted one."""

from __future__ import annotations

import torch

from fasterseg.train.compact import read_compact
from fasterseg.train.trainer import CHECKPOINT, train
from tests.helpers import toy_train_config

MIX = ("data.mix=classmix", "data.mix_prob=1.0", "val_every=-1")


def test_a_resumed_run_mixes_as_the_uninterrupted_one(toy, tmp_path):
    full = train(toy_train_config(toy, tmp_path, "full", *MIX, "epochs=2"), show_progress=False)
    train(toy_train_config(toy, tmp_path, "split", *MIX, "epochs=1"), show_progress=False)
    resumed = train(toy_train_config(toy, tmp_path, "split", *MIX, "epochs=2"), resume=True, show_progress=False)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    a, b = read_compact(full.run_dir / CHECKPOINT)[0].model, read_compact(resumed.run_dir / CHECKPOINT)[0].model
    for key in a:
        assert torch.equal(a[key], b[key]), key
    plain = train(toy_train_config(toy, tmp_path, "plain", "val_every=-1", "epochs=1"), show_progress=False)
    assert plain.history[0]["loss"] != full.history[0]["loss"]  # the mixing reached the steps
