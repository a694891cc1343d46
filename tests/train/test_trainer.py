"""Real (tiny) training runs on real PNG files: learning, resume, distillation, DDP, NaN stop."""

from __future__ import annotations

import os
import socket

import pytest
import torch

import fasterseg
from fasterseg.config import load_config
from fasterseg.data.registry import build_dataset
from fasterseg.modelfile import ModelMeta, save_model
from fasterseg.nets.network import FasterSegNet, init_weights
from fasterseg.train.config import TrainConfig
from fasterseg.distributed import DistInfo
from fasterseg.train.compact import read_compact
from fasterseg.train.trainer import CHECKPOINT, evaluate_model, train
from fasterseg.errors import TrainingError

from tests.helpers import tensorboard_scalars, tiny_genotype


def _cfg(toy, out, name, **extra) -> TrainConfig:
    spec, geno = toy
    overrides = [f"genotype={geno}", f"data.spec={spec}", f"out_dir={out}", f"name={name}", "epochs=2",
                 "iters_per_epoch=6", "batch_size=4", "data.crop_size=[64, 64]", "data.workers=0", "val_every=1",
                 "optim.lr=0.05", "log_every=2"]
    overrides += [f"{k.replace('__', '.')}={v}" for k, v in extra.items()]
    return load_config(TrainConfig, None, overrides)


def test_training_lowers_the_loss_and_beats_the_untrained_model(toy, tmp_path):
    cfg = _cfg(toy, tmp_path, "learn", epochs=4)
    result = train(cfg, show_progress=False)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    val = build_dataset(toy[0], "val")
    torch.manual_seed(0)
    untrained = FasterSegNet(tiny_genotype())
    init_weights(untrained)
    before = evaluate_model(untrained, val, val.info, torch.device("cpu"), DistInfo(), show_progress=False)["mIoU"]
    model = fasterseg.load_model(result.model_path)
    after = evaluate_model(model, val, val.info, torch.device("cpu"), DistInfo(), show_progress=False)["mIoU"]
    assert after > before + 0.1
    assert abs(after - result.best_miou) < 1e-9
    # The run directory documents itself.
    for name in ("config.yaml", "genotype.json", "environment.json", "metrics.json", "epochs.csv", "train_log.csv",
                 "best.safetensors", "last.safetensors", CHECKPOINT):
        assert (result.run_dir / name).is_file(), name
    assert model.meta.class_names == val.info.class_names
    # `fasterseg eval --model` scores the same model through the report's scorer: same mIoU.
    from fasterseg.cli import main

    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(result.model_path), "--data", toy[0], "--split", "val", "--json", str(out)]) == 0
    import json

    reported = json.loads(out.read_text())
    assert abs(reported["average"]["IoU Classes"] - after) < 1e-6


def test_resume_continues_exactly(toy, tmp_path):
    full = train(_cfg(toy, tmp_path, "full"), show_progress=False)
    first = train(_cfg(toy, tmp_path, "split", epochs=1), show_progress=False)
    assert len(first.history) == 1
    resumed = train(_cfg(toy, tmp_path, "split", epochs=2), resume=True, show_progress=False)
    a = read_compact(full.run_dir / CHECKPOINT)[0].model
    b = read_compact(resumed.run_dir / CHECKPOINT)[0].model
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    # TensorBoard (a test dependency): the curves continue across the resume, one point per epoch.
    scalars = tensorboard_scalars(resumed.run_dir / "tensorboard")
    assert [s for s, _ in scalars["epoch/loss"]] == [6, 12]  # 6 iterations per epoch
    assert [v for _, v in scalars["epoch/loss"]] == pytest.approx([h["loss"] for h in full.history], rel=1e-6)
    assert [s for s, _ in scalars["train/loss"]] == [2, 4, 6, 8, 10, 12]  # log_every=2


def test_a_second_run_into_the_same_directory_is_refused(toy, tmp_path):
    train(_cfg(toy, tmp_path, "once", epochs=1), show_progress=False)
    with pytest.raises(TrainingError, match="--resume"):
        train(_cfg(toy, tmp_path, "once", epochs=1), show_progress=False)


def test_non_finite_loss_stops_with_the_last_checkpoint_intact(toy, tmp_path):
    train(_cfg(toy, tmp_path, "nan", epochs=1), show_progress=False)
    before = (tmp_path / "nan" / CHECKPOINT).read_bytes()
    with pytest.raises(TrainingError, match="loss became"):
        train(_cfg(toy, tmp_path, "nan", epochs=3, optim__lr="1.0e+30"), resume=True, show_progress=False)
    assert (tmp_path / "nan" / CHECKPOINT).read_bytes() == before


def test_distillation_from_a_teacher_runs_and_is_recorded(toy, tmp_path):
    torch.manual_seed(1)
    teacher = FasterSegNet(tiny_genotype())
    init_weights(teacher)
    path = save_model(tmp_path / "teacher.safetensors", teacher,
                      ModelMeta(genotype=tiny_genotype(), class_names=build_dataset(toy[0], "val").info.class_names))
    result = train(_cfg(toy, tmp_path, "student", epochs=1, teacher=str(path)), show_progress=False)
    assert result.history[0]["loss"] > 0
    assert "teacher: " in (result.run_dir / "config.yaml").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg: TrainConfig) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train(cfg, show_progress=False)


def test_two_processes_match_one_on_the_same_global_batch(toy, tmp_path):
    # BN statistics are frozen (SyncBatchNorm needs GPUs) and OHEM keeps every pixel, so the
    # only differences left are sharding and gradient averaging, which must be exact; in fp32,
    # since bf16 rounds the two shardings' activations differently by design.
    common = dict(freeze_bn="true", loss__ohem_thresh=1.0, data__scales="[1.0]", val_every=0, epochs=1, precision="fp32")
    single = train(_cfg(toy, tmp_path, "one", batch_size=4, **common), show_progress=False)
    cfg2 = _cfg(toy, tmp_path, "two", batch_size=2, **common)
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), cfg2), nprocs=2, join=True)
    a = read_compact(single.run_dir / CHECKPOINT)[0].model
    b = read_compact(tmp_path / "two" / CHECKPOINT)[0].model
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def test_resume_after_a_real_kill_matches_an_uninterrupted_run(toy, tmp_path):
    """SIGKILL a `fasterseg train` process mid-run, resume it, compare with a run never stopped."""
    import signal
    import subprocess
    import sys
    import time

    spec, geno = toy
    args = ["--genotype", geno, "--data", spec, "--out-dir", str(tmp_path), "--quiet",
            "--set", "epochs=3", "--set", "iters_per_epoch=6", "--set", "batch_size=4", "--set", "data.crop_size=[64, 64]",
            "--set", "data.workers=0", "--set", "val_every=0", "--set", "optim.lr=0.05"]
    cmd = [sys.executable, "-m", "fasterseg.cli", "train"]
    proc = subprocess.Popen(cmd + args + ["--name", "killed"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / CHECKPOINT
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), "the first epoch never finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run(cmd + ["--resume", str(tmp_path / "killed"), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(cmd + args + ["--name", "straight"], check=True, stdout=subprocess.DEVNULL)
    a = read_compact(tmp_path / "straight" / CHECKPOINT)[0]
    b = read_compact(tmp_path / "killed" / CHECKPOINT)[0]
    assert a.epoch == b.epoch == 2
    for k in a.model:
        assert torch.equal(a.model[k], b.model[k]), k


def test_eval_reads_the_data_the_model_records_and_says_when_frames_were_trained_on(toy, tmp_path, capsys):
    """`eval --model M` needs no --data (the model file records it), and a score on frames the
    model trained on says so under the table; a held-out split gets no such line."""
    from fasterseg.cli import main

    result = train(_cfg(toy, tmp_path, "seen", epochs=1, val_every=0), show_progress=False)
    capsys.readouterr()
    assert main(["eval", "--model", str(result.model_path), "--split", "train"]) == 0
    captured = capsys.readouterr()
    assert f"data: {toy[0]} (recorded in" in captured.err
    assert "note: 8 of these 8 frames were among the model's training frames (train split train)" in captured.out
    assert main(["eval", "--model", str(result.model_path), "--split", "val"]) == 0
    assert "training frames" not in capsys.readouterr().out
    assert main(["eval", "--pred-dir", str(tmp_path)]) == 1
    assert "--data SPEC is needed: a prediction folder names no dataset" in capsys.readouterr().err


def test_without_auxiliary_heads_nothing_of_them_is_built_or_saved(toy, tmp_path):
    """loss.aux_weight=0 trains the 1/8 head alone: no auxiliary head in the model or its files
    (their losses at full resolution are a third of a CPU step), and it still learns."""
    result = train(_cfg(toy, tmp_path, "noaux", epochs=3, loss__aux_weight=0), show_progress=False)
    state = read_compact(result.run_dir / CHECKPOINT)[0].model
    assert state and not any(k.startswith(("heads16", "heads32")) for k in state)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    with_aux = read_compact(train(_cfg(toy, tmp_path, "aux", epochs=1), show_progress=False).run_dir / CHECKPOINT)[0].model
    assert any(k.startswith("heads16") for k in with_aux)


def test_a_new_run_after_a_failure_in_epoch_one_logs_each_row_once(toy, tmp_path, monkeypatch):
    """An attempt that dies before its first checkpoint leaves log rows; training again under
    the same name starts the logs afresh instead of appending a second epoch 1."""
    import csv

    from fasterseg.train import trainer

    calls = {"n": 0}
    real = trainer._Step.__call__

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise TrainingError("simulated failure in epoch 1")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(trainer._Step, "__call__", failing)
    with pytest.raises(TrainingError, match="simulated"):
        train(_cfg(toy, tmp_path, "again", epochs=1), show_progress=False)
    assert (tmp_path / "again" / "train_log.csv").is_file()  # the failed attempt logged iterations 2 and 4
    monkeypatch.setattr(trainer._Step, "__call__", real)
    train(_cfg(toy, tmp_path, "again", epochs=1), show_progress=False)
    with open(tmp_path / "again" / "train_log.csv") as f:
        rows = [(r["epoch"], r["iter"]) for r in csv.DictReader(f)]
    assert rows == [("1", "2"), ("1", "4"), ("1", "6")]
    with open(tmp_path / "again" / "epochs.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]
