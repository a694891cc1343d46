"""The weights' moving average: its arithmetic by hand, a run that keeps it (scored, saved,
carried to a new machine bit for bit), a run that switches it on when resumed, and the log that
widens for the new column."""

from __future__ import annotations

import csv
import shutil

import pytest
import torch
from safetensors import safe_open
from torch import nn

from fasterseg.cli import main
from fasterseg.train.compact import COMPACT, read_compact
from fasterseg.train.config import TrainConfig
from fasterseg.train.ema import WeightAverage
from fasterseg.train.trainer import CHECKPOINT, train
from fasterseg.utils.io import append_csv_row
from tests.helpers import toy_train_config


def _cfg(toy, out, name, **extra) -> TrainConfig:
    return toy_train_config(toy, out, name, "iters_per_epoch=4", "ema_decay=0.8", *(f"{k}={v}" for k, v in extra.items()))


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_average_by_hand():
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    average = WeightAverage(model, decay=0.75)
    for value in (5.0, 9.0):
        with torch.no_grad():
            model[0].weight.fill_(value)
            model[1].running_mean.fill_(value)
        model[1].num_batches_tracked += 3
        average.update(model)
    shadow = average.shadow
    # 1 -> 0.75 * 1 + 0.25 * 5 = 2 -> 0.75 * 2 + 0.25 * 9 = 3.75
    assert float(shadow[0].weight) == 3.75
    # running mean 0 -> 1.25 -> 0.9375 + 2.25 = 3.1875; the step counter is copied, not averaged
    assert float(shadow[1].running_mean) == 3.1875
    assert int(shadow[1].num_batches_tracked) == 6
    assert not any(p.requires_grad for p in shadow.parameters()) and not shadow.training
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)


def test_a_run_keeps_scores_and_carries_its_average_bit_for_bit(toy, tmp_path):
    from fasterseg.modelfile import load_model, read_model_file

    full = train(_cfg(toy, tmp_path, "full"), show_progress=False)
    rows = _rows(full.run_dir / "epochs.csv")
    assert all(0.0 <= float(r["val_mIoU_ema"]) <= 1.0 for r in rows) and len(rows) == 3
    averaged, meta = read_model_file(full.run_dir / "ema.safetensors")
    last, _ = read_model_file(full.run_dir / "last.safetensors")
    assert any(not torch.equal(averaged[k], last[k]) for k in last if last[k].is_floating_point())
    assert meta.extra["metrics"]["val_mIoU"] == pytest.approx(float(rows[-1]["val_mIoU_ema"]))
    assert "moving average" in meta.extra["metrics"]["weights"]
    assert load_model(str(full.run_dir / "ema.safetensors")) is not None

    first = train(_cfg(toy, tmp_path, "split", epochs=1), show_progress=False)
    carried = tmp_path / "carried.safetensors"
    shutil.copy(first.run_dir / COMPACT, carried)
    with safe_open(str(carried), framework="pt") as f:
        assert f.metadata()["level"] == "fp32" and any(k.startswith("ema.") for k in f.keys())
    shutil.rmtree(first.run_dir)  # a new machine
    assert main(["train", "--continue-from", str(carried), "--out-dir", str(tmp_path / "new"), "--name", "cont",
                 "--quiet", "--set", "epochs=3"]) == 0
    a = read_compact(full.run_dir / CHECKPOINT)[0].ema
    b = read_compact(tmp_path / "new" / "cont" / CHECKPOINT)[0].ema
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_switched_on_at_resume_the_average_starts_there_and_the_log_widens(toy, tmp_path):
    first = train(_cfg(toy, tmp_path, "late", epochs=3, ema_decay=0.0), show_progress=False)
    log = first.run_dir / "epochs.csv"
    assert _rows(log)[0]["val_mIoU_ema"] == ""
    assert not (first.run_dir / "ema.safetensors").exists()
    lines = log.read_text().splitlines()  # as a run started by an earlier version logged it: without the column
    assert lines[0].endswith(",val_mIoU_ema") and lines[1].endswith(",")
    log.write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in lines))
    resumed_from = read_compact(first.run_dir / CHECKPOINT)[0].model
    assert main(["train", "--resume", str(first.run_dir), "--quiet", "--set", "epochs=4", "--set", "ema_decay=0.95"]) == 0
    # four steps at decay 0.95 later the average still holds 0.95^4 = 81% of the weights it started
    # at, the resumed ones of epoch 3, so it lags behind the weights: nearer to where they were than
    # they are now (it once started at the run's initial weights instead, twelve steps away, which
    # this catches)
    state = read_compact(first.run_dir / CHECKPOINT)[0]
    convs = [k for k in state.model if state.model[k].dim() == 4]

    def distance(a, b):
        return sum(float((a[k] - b[k]).square().sum()) for k in convs) ** 0.5

    assert 0 < distance(state.ema, resumed_from) < distance(state.model, resumed_from)
    rows = _rows(log)
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["val_mIoU_ema"] for r in rows[:3]] == ["", "", ""] and 0.0 <= float(rows[3]["val_mIoU_ema"]) <= 1.0
    assert float(rows[0]["val_mIoU"]) >= 0.0  # the old row kept its values under the old columns
    assert (first.run_dir / "ema.safetensors").is_file()


def test_a_log_row_with_a_new_column_widens_the_file_and_a_short_row_leaves_blanks(tmp_path):
    log = tmp_path / "log.csv"
    append_csv_row(log, {"epoch": 1, "loss": 0.5})
    append_csv_row(log, {"epoch": 2, "loss": 0.4, "score": 0.3})
    append_csv_row(log, {"loss": 0.2, "epoch": 3})  # columns in another order, one missing
    assert log.read_text().splitlines() == ["epoch,loss,score", "1,0.5,", "2,0.4,0.3", "3,0.2,"]
