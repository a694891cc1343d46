"""scripts/ship_builtin_model.py on a finished tiny run: it ships the weights' moving average where the run
kept one (the recipe's model), records which weights and their score, and refuses weights the run lacks."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import torch

from fasterseg.cli import main
from fasterseg.modelfile import read_model_file
from fasterseg.train.trainer import train
from tests.helpers import toy_train_config

REPO = Path(__file__).resolve().parents[2]


def _ship(run: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts/ship_builtin_model.py"), str(run), "--out", str(out), *args],
                          capture_output=True, text=True, cwd=REPO)


def test_ships_the_average_and_says_so(toy, tmp_path, capsys):
    run = train(toy_train_config(toy, tmp_path, "avg", "epochs=2", "iters_per_epoch=3", "ema_decay=0.8"),
                show_progress=False).run_dir
    done = _ship(run, tmp_path / "shipped.safetensors")
    assert done.returncode == 0, done.stderr
    shipped, meta = read_model_file(tmp_path / "shipped.safetensors")
    average, _ = read_model_file(run / "ema.safetensors")
    last, _ = read_model_file(run / "last.safetensors")
    assert meta.extra["weights"].startswith("moving average")
    differs = False
    for name, tensor in shipped.items():
        assert tensor.dtype in (torch.float16, torch.int64), name
        if tensor.is_floating_point():
            assert torch.equal(tensor, average[name].half()), name
            differs |= not torch.equal(tensor, last[name].half())
    assert differs  # the average is not the last weights: the test would tell the two apart
    with open(run / "epochs.csv", newline="") as f:
        last_ema = [r["val_mIoU_ema"] for r in csv.DictReader(f) if r["val_mIoU_ema"]][-1]
    assert abs(meta.extra["val_mIoU"] - float(last_ema)) < 1e-9

    as_last = _ship(run, tmp_path / "last.safetensors", "--weights", "last", "--dtype", "int8", "--latency", "64x96", "--paths",
                    "eager:fp32,nosuchbackend:fp32", "--threads", "1")
    assert as_last.returncode == 0, as_last.stderr
    extra = read_model_file(tmp_path / "last.safetensors")[1].extra
    assert extra["weights"] == "last epoch"
    assert (tmp_path / "last.safetensors").stat().st_size < (tmp_path / "shipped.safetensors").stat().st_size  # int8
    # the one path that runs is timed and recorded; the unknown one is skipped, not fatal
    assert "ms model-only" in extra["latency"] and "eager fp32, 64x96, 1 threads" in extra["latency"], extra["latency"]
    capsys.readouterr()
    assert main(["info", str(tmp_path / "last.safetensors")]) == 0
    shown = capsys.readouterr().out
    assert "latency" in shown and "last epoch" in shown


def test_refuses_weights_the_run_lacks(toy, tmp_path):
    run = train(toy_train_config(toy, tmp_path, "plain", "epochs=1", "iters_per_epoch=2"), show_progress=False).run_dir
    done = _ship(run, tmp_path / "x.safetensors", "--weights", "ema")
    assert done.returncode != 0 and "ema.safetensors does not exist" in done.stderr
    assert not (tmp_path / "x.safetensors").exists()
