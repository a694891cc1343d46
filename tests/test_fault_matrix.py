"""Kill a training run and a search at every point where a file of theirs is complete, resume,
and compare with a run never stopped: identical weights, architectures, genotypes and logs.

Every file a run keeps is written through :mod:`fasterseg.utils.io` (a temporary name, fsync,
rename; or a fsync'd CSV row), which calls ``write_point(path)`` once the file is whole. The
child process replaces that seam with one that ends the process (``os._exit``, no cleanup, as
SIGKILL) at its k-th call, for every k inside the second epoch. The full matrix is slow (one
child per write point); the default run checks the write points that end an epoch.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fasterseg.config import load_config
from fasterseg.train.config import TrainConfig
from fasterseg.train.compact import read_compact
from fasterseg.train.trainer import CHECKPOINT, train
from fasterseg.search.loop import run_phase
from tests.helpers import tiny_genotype, write_toy_camvid
from tests.search.test_data_and_loop import _cost, _macs_latency, tiny_search_config, write_camvid

KILLED = 9


# -- the seam ------------------------------------------------------------------------------
def _record_write_points(monkeypatch) -> list[Path]:
    import fasterseg.utils.io as io

    seen: list[Path] = []
    monkeypatch.setattr(io, "write_point", lambda path: seen.append(Path(path)))
    return seen


def _die_at(k: int) -> None:
    """In this (child) process, end abruptly right after the k-th file is complete."""
    import fasterseg.utils.io as io

    torch.set_num_threads(1)
    calls = {"n": 0}

    def write_point(path):
        calls["n"] += 1
        if calls["n"] == k:
            os._exit(KILLED)

    io.write_point = write_point


def _second_epoch(points: list[Path], marker: str) -> range:
    """1-based indices of the write points of the second epoch: after the first ``marker`` file
    (the checkpoint that ends an epoch) up to and including the second."""
    ends = [i + 1 for i, p in enumerate(points) if p.name == marker]
    return range(ends[0] + 1, ends[1] + 1)


def _run_child(target, args) -> int:
    child = mp.get_context("spawn").Process(target=target, args=args)
    child.start()
    child.join(timeout=600)
    return child.exitcode


# -- training ------------------------------------------------------------------------------
def _train_cfg(spec: str, genotype: str, out: Path, name: str) -> TrainConfig:
    return load_config(TrainConfig, None, [
        f"genotype={genotype}", f"data.spec={spec}", f"out_dir={out}", f"name={name}", "epochs=3", "iters_per_epoch=4",
        "batch_size=4", "data.crop_size=[64, 64]", "data.workers=0", "val_every=1", "optim.lr=0.05", "log_every=2",
        "data.cache=false"])


def _train_child(cfg: TrainConfig, k: int) -> None:
    _die_at(k)
    train(cfg, show_progress=False)


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    with open(path, newline="") as f:
        return [tuple(row[c] for c in columns) for row in csv.DictReader(f)]


def _same_training(a: Path, b: Path) -> None:
    sa, sb = (read_compact(d / CHECKPOINT)[0] for d in (a, b))
    assert sa.epoch == sb.epoch and sa.best_miou == sb.best_miou
    assert all(torch.equal(sa.model[k], sb.model[k]) for k in sa.model)
    assert all(torch.equal(sa.optimizer["state"][i]["momentum_buffer"], sb.optimizer["state"][i]["momentum_buffer"])
               for i in sa.optimizer["state"])
    for name in ("last.safetensors", "best.safetensors"):
        ta, tb = load_file(str(a / name)), load_file(str(b / name))
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), name
    # the logs hold every step and epoch once, with the same numbers (times aside)
    assert _rows(a / "epochs.csv", ("epoch", "loss", "lr", "val_mIoU")) == _rows(b / "epochs.csv", ("epoch", "loss", "lr", "val_mIoU"))
    assert _rows(a / "train_log.csv", ("epoch", "iter", "loss", "lr")) == _rows(b / "train_log.csv", ("epoch", "iter", "loss", "lr"))
    assert not list(b.glob(".*.tmp"))


def _training_matrix(tmp_path: Path, monkeypatch, every_point: bool) -> list[str]:
    torch.set_num_threads(1)
    spec = write_toy_camvid(tmp_path / "data")
    genotype = tmp_path / "tiny.json"
    tiny_genotype().save(genotype)
    with monkeypatch.context() as m:
        points = _record_write_points(m)
        train(_train_cfg(spec, str(genotype), tmp_path, "straight"), show_progress=False)
    epoch = _second_epoch(points, CHECKPOINT)
    chosen = list(epoch) if every_point else [epoch[0], epoch[-1] - 1, epoch[-1]]
    killed_at = []
    for k in chosen:
        cfg = _train_cfg(spec, str(genotype), tmp_path, f"killed_{k}")
        assert _run_child(_train_child, (cfg, k)) == KILLED
        train(cfg, resume=True, show_progress=False)
        _same_training(tmp_path / "straight", tmp_path / f"killed_{k}")
        killed_at.append(points[k - 1].name)
    return killed_at


def test_training_killed_as_an_epoch_ends_resumes_to_the_same_run(tmp_path, monkeypatch):
    killed_at = _training_matrix(tmp_path, monkeypatch, every_point=False)
    # the epoch's first log row; the model file written just before the checkpoint; the checkpoint
    assert killed_at[0] == "train_log.csv" and killed_at[1].endswith(".safetensors") and killed_at[2] == CHECKPOINT


@pytest.mark.slow
def test_training_killed_after_any_file_resumes_to_the_same_run(tmp_path, monkeypatch):
    killed_at = _training_matrix(tmp_path, monkeypatch, every_point=True)
    assert {"train_log.csv", "epochs.csv", "last.safetensors", "best.safetensors", CHECKPOINT} <= set(killed_at)


# -- search --------------------------------------------------------------------------------
def _search_cfg(data: Path):
    return tiny_search_config(data, pretrain=False, epochs=3, latency_weights={"student": 0.5},
                              val_data=f"camvid:{data}", val_limit=2, fps_min={"student": 1e6}, fps_max={"student": 2e6})


def _search_child(cfg, run_dir: Path, k: int) -> None:
    _die_at(k)
    run_phase(cfg, run_dir, latency_fn=_cost, genotype_latency=_macs_latency)


def _same_search(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / "weights.safetensors")), load_file(str(b / "weights.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    for name in ("arch.json", "log.csv", "teacher.json", "student.json"):
        assert (a / name).read_text() == (b / name).read_text(), name
    history = sorted(p.name for p in (a / "history").glob("*.json"))
    assert history == sorted(p.name for p in (b / "history").glob("*.json"))
    assert all((a / "history" / n).read_text() == (b / "history" / n).read_text() for n in history)
    assert not list(b.glob(".*.tmp"))


def _search_matrix(tmp_path: Path, monkeypatch, every_point: bool) -> list[str]:
    torch.set_num_threads(1)
    data = write_camvid(tmp_path / "camvid", n=4, splits=("train", "val"))
    cfg = _search_cfg(data)
    with monkeypatch.context() as m:
        points = _record_write_points(m)
        run_phase(cfg, tmp_path / "straight", latency_fn=_cost, genotype_latency=_macs_latency)
    epoch = _second_epoch(points, "checkpoint.json")
    chosen = list(epoch) if every_point else [epoch[0], epoch[-1] - 1, epoch[-1]]
    killed_at = []
    for k in chosen:
        run_dir = tmp_path / f"killed_{k}"
        assert _run_child(_search_child, (cfg, run_dir, k)) == KILLED
        run_phase(cfg, run_dir, latency_fn=_cost, genotype_latency=_macs_latency, resume=True)
        _same_search(tmp_path / "straight", run_dir)
        killed_at.append(points[k - 1].name)
    return killed_at


@pytest.mark.slow  # 70 s; a search's exact resume stays in the default run (tests/search/test_data_and_loop.py)
def test_search_killed_as_an_epoch_ends_resumes_to_the_same_run(tmp_path, monkeypatch):
    killed_at = _search_matrix(tmp_path, monkeypatch, every_point=False)
    # the epoch's first file; its checkpoint's tensors before the JSON that commits them; the JSON
    assert killed_at[1].startswith("checkpoint-e") and killed_at[2] == "checkpoint.json"


@pytest.mark.slow
def test_search_killed_after_any_file_resumes_to_the_same_run(tmp_path, monkeypatch):
    killed_at = _search_matrix(tmp_path, monkeypatch, every_point=True)
    assert {"weights.safetensors", "arch.json", "log.csv", "checkpoint.json"} <= set(killed_at)
