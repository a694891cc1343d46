"""Two runs in one folder at once: the second is refused while the first lives (issue 18, item 4)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fasterseg.utils.runlock import run_lock
from fasterseg.errors import RunInUseError

HOLDER = """
import sys, time
from pathlib import Path
from fasterseg.utils.runlock import run_lock
with run_lock(Path(sys.argv[1])):
    (Path(sys.argv[1]) / "started").write_text("x")
    time.sleep(60)
"""


def test_a_second_process_is_refused_while_the_first_holds_the_folder_and_admitted_after_a_kill(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)])
    try:
        deadline = time.time() + 60
        while not (run / "started").exists() and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(RunInUseError, match=rf"pid {holder.pid}"):
            with run_lock(run):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(run):  # the killed holder's lock died with it
        (run / "mine").write_text("y")
    assert (run / "mine").exists()


def test_a_failed_start_leaves_no_folder_but_a_used_one_stays(tmp_path):
    with pytest.raises(ValueError):
        with run_lock(tmp_path / "bad"):
            raise ValueError("config check failed")
    assert not (tmp_path / "bad").exists()
    with run_lock(tmp_path / "good"):
        (tmp_path / "good" / "log.csv").write_text("")
    assert (tmp_path / "good" / "log.csv").exists()


def test_two_trainings_with_one_name_at_once_the_second_is_refused(tmp_path):
    from fasterseg.config import load_config
    from fasterseg.train.config import TrainConfig
    from fasterseg.train.trainer import train

    from tests.helpers import tiny_genotype, write_toy_camvid

    spec = write_toy_camvid(tmp_path / "toy")
    tiny_genotype().save(tmp_path / "g.json")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "runs" / "same")])
    try:
        deadline = time.time() + 60
        while not (tmp_path / "runs" / "same" / "started").exists() and time.time() < deadline:
            time.sleep(0.05)
        cfg = load_config(TrainConfig, None, [f"genotype={tmp_path / 'g.json'}", f"data.spec={spec}",
                                              f"out_dir={tmp_path / 'runs'}", "name=same", "epochs=1",
                                              "iters_per_epoch=1", "batch_size=2", "data.crop_size=[64, 64]"])
        with pytest.raises(RunInUseError):
            train(cfg, show_progress=False)
        assert sorted(p.name for p in (tmp_path / "runs" / "same").iterdir()) == [".lock", "started"]
    finally:
        holder.kill()
        holder.wait()


def test_leftover_temporary_files_of_a_killed_run_are_removed_under_the_lock(tmp_path):
    run = tmp_path / "run"
    (run / "search").mkdir(parents=True)
    leftovers = [run / ".checkpoint.pt.abc123.tmp", run / "search" / ".weights.safetensors.x.tmp"]
    for p in leftovers:
        p.write_bytes(b"half")
    kept = run / "notes.tmp"  # not an atomic write's name
    kept.write_text("mine")
    with run_lock(run):
        assert not any(p.exists() for p in leftovers)
    assert kept.exists()
