"""A search killed with SIGKILL-like abruptness between the two files of its checkpoint resumes to
exactly the uninterrupted result (issue 18, item 5)."""

from __future__ import annotations

import multiprocessing as mp
import os

import torch
from safetensors.torch import load_file

from fasterseg.search.loop import run_search

from tests.search.test_data_and_loop import _cost, tiny_search_config, write_camvid


def _dies_at_commit(cfg, run_dir, commit: int) -> None:
    """Run the search in this (child) process and end it without cleanup at the ``commit``-th
    checkpoint, after the tensors are on disk and before the JSON that names them."""
    import fasterseg.search.checkpoint as checkpoint

    torch.set_num_threads(1)
    calls = {"n": 0}

    def die():
        calls["n"] += 1
        if calls["n"] == commit:
            os._exit(9)

    checkpoint.before_commit = die
    run_search(cfg, run_dir, latency_fn=_cost)


def test_a_kill_between_tensors_and_json_resumes_to_the_uninterrupted_result(tmp_path):
    torch.set_num_threads(1)
    data = write_camvid(tmp_path / "camvid", n=4)
    cfg = tiny_search_config(data, pretrain=False, epochs=3, latency_weights={"student": 0.5})
    run_search(cfg, tmp_path / "straight", latency_fn=_cost)
    child = mp.get_context("spawn").Process(target=_dies_at_commit, args=(cfg, tmp_path / "killed", 2))
    child.start()
    child.join(timeout=300)
    assert child.exitcode == 9  # it really died at the second epoch's checkpoint
    # the second epoch's tensors were written, but the committed checkpoint is still the first's
    assert (tmp_path / "killed" / "checkpoint-e0001.safetensors").is_file()
    assert '"epoch": 0' in (tmp_path / "killed" / "checkpoint.json").read_text()
    run_search(cfg, tmp_path / "killed", latency_fn=_cost, resume=True)
    a = load_file(str(tmp_path / "straight" / "weights.safetensors"))
    b = load_file(str(tmp_path / "killed" / "weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in ("arch.json", "log.csv"):  # the architectures (genotypes derive from them) and every epoch's record
        assert (tmp_path / "straight" / name).read_text() == (tmp_path / "killed" / name).read_text()
    assert sorted(p.name for p in (tmp_path / "killed").glob("checkpoint*")) == ["checkpoint-e0002.safetensors",
                                                                                  "checkpoint.json"]
