"""Compact checkpoints: a run carried to a new machine in one small file continues as if never
stopped (bit for bit in fp32, within the noise of seeds when rounded to fit), and the optimiser
and warm-up settings the long CamVid recipe needs."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors import safe_open

from fasterseg.cli import main
from fasterseg.errors import TrainingError
from fasterseg.train.compact import COMPACT, RunRecord, TrainState, compact_files, copy_compact, read_compact, save_compact
from fasterseg.train.config import TrainConfig
from fasterseg.train.trainer import CHECKPOINT, learning_rate, make_optimizer, train
from tests.helpers import toy_train_config


def _cfg(toy, out, name, **extra) -> TrainConfig:
    return toy_train_config(toy, out, name, "optim.weight_decay=0.0001",
                            *(f"{k.replace('__', '.')}={v}" for k, v in extra.items()))


def _continue_elsewhere(tmp_path, compact, out, *sets) -> None:
    """Continue from a copy of ``compact`` with the original run folder gone (a new machine)."""
    carried = tmp_path / "carried" / out / "run.safetensors"
    carried.parent.mkdir(parents=True)
    copy_compact(compact, carried)  # with its parts, where it was split
    shutil.rmtree(compact.parent)
    args = ["train", "--continue-from", str(carried), "--out-dir", str(tmp_path / out), "--name", "cont", "--quiet"]
    for s in ("epochs=3", *sets):
        args += ["--set", s]
    assert main(args) == 0


def test_an_fp32_compact_checkpoint_continues_bit_for_bit_on_a_new_machine(toy, tmp_path):
    full = train(_cfg(toy, tmp_path, "full"), show_progress=False)
    first = train(_cfg(toy, tmp_path, "split", epochs=1), show_progress=False)
    compact = first.run_dir / COMPACT
    with safe_open(str(compact), framework="pt") as f:
        assert f.metadata()["level"] == "fp32"
    _continue_elsewhere(tmp_path, compact, "new")
    cont = tmp_path / "new" / "cont"
    a = read_compact(full.run_dir / CHECKPOINT)[0]
    b = read_compact(cont / CHECKPOINT)[0]
    for k in a.model:
        assert torch.equal(a.model[k], b.model[k]), k

    def no_times(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert no_times(a.history) == no_times(b.history)  # all three epochs' losses and scores, the first carried
    rows = (cont / "epochs.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]
    assert (cont / "best.safetensors").is_file() and (cont / "genotype.json").is_file()


def test_a_rounded_compact_checkpoint_ends_within_the_noise_of_seeds(toy, tmp_path):
    """fp16 weights and bf16 moments: not bit for bit, but closer to the uninterrupted run than
    another seed is."""
    full = train(_cfg(toy, tmp_path, "full", epochs=3), show_progress=False)
    other_seed = train(_cfg(toy, tmp_path, "seed1", epochs=3, seed=1), show_progress=False)
    first = train(_cfg(toy, tmp_path, "split", epochs=1, compact_max_mb=1e-6), show_progress=False)
    compact = first.run_dir / COMPACT
    with safe_open(str(compact), framework="pt") as f:
        assert f.metadata()["level"] == "fp16+bf16"  # the smallest level, split into parts over the limit
    dtypes = {}
    for file in compact_files(compact):
        with safe_open(str(file), framework="pt") as f:
            dtypes.update({k: f.get_slice(k).get_dtype() for k in f.keys()})
    assert any(k.startswith("model.") and d == "F16" for k, d in dtypes.items())
    assert any(k.endswith("exp_avg_sq") and d == "BF16" for k, d in dtypes.items())
    _continue_elsewhere(tmp_path, compact, "new")
    cont = read_compact(tmp_path / "new" / "cont" / CHECKPOINT)[0]
    ref = read_compact(full.run_dir / CHECKPOINT)[0]
    seed = read_compact(other_seed.run_dir / CHECKPOINT)[0]

    def distance(x, y):
        return sum(float((x.model[k].float() - y.model[k].float()).norm()) for k in x.model
                   if x.model[k].is_floating_point())

    assert 0 < distance(cont, ref) < 0.2 * distance(seed, ref)


def test_the_most_precise_level_that_fits_is_chosen(tmp_path):
    """A 1000-parameter layer under Adam: fp32 needs 12 kB, bf16 moments 8 kB, fp16 weights 6 kB."""
    layer = torch.nn.Linear(100, 10, bias=False)
    opt = torch.optim.Adam(layer.parameters())
    layer(torch.randn(4, 100)).sum().backward()
    opt.step()
    state = TrainState(model=layer.state_dict(), optimizer=opt.state_dict(), scaler={}, epoch=0, best_miou=None,
                       history=[], rng_cpu=torch.get_rng_state())
    record = RunRecord(config={}, genotype={}, init=None)
    header = 4096 + 6000 + 2000  # the RNG state (5 kB) and the JSON header ride along
    for mb, level in ((1.0, "fp32"), ((8000 + header) / 1e6, "fp32+bf16"), ((6000 + header) / 1e6, "fp16+bf16")):
        path = tmp_path / f"{level}.safetensors"
        assert save_compact(path, state, record, max_mb=mb) == level
        back, _ = read_compact(path)
        tol = {"fp32": 0, "fp32+bf16": 0, "fp16+bf16": 1e-3}[level]
        assert torch.allclose(back.model["weight"], layer.weight, rtol=tol, atol=0)
        m = opt.state_dict()["state"][0]["exp_avg_sq"]
        assert torch.allclose(back.optimizer["state"][0]["exp_avg_sq"], m, rtol=0 if level == "fp32" else 1e-2, atol=0)
        assert float(back.optimizer["state"][0]["step"]) == 1.0


def _adam_state(features: int = 1000, outputs: int = 10) -> TrainState:
    layer = torch.nn.Sequential(torch.nn.Linear(features, outputs, bias=False), torch.nn.Linear(outputs, outputs, bias=False))
    opt = torch.optim.Adam(layer.parameters())
    layer(torch.randn(4, features)).sum().backward()
    opt.step()
    return TrainState(model=layer.state_dict(), optimizer=opt.state_dict(), scaler={}, epoch=41, best_miou=0.25,
                      history=[{"epoch": 0}], rng_cpu=torch.get_rng_state())


def test_a_checkpoint_too_large_for_one_file_is_split_into_parts_that_each_fit(tmp_path):
    """10k parameters with Adam: 20 kB of fp16 weights and 40 kB of bf16 moments do not fit 30 kB;
    written in parts of at most 30 kB, they read back as the single file of the same level does."""
    state, record = _adam_state(), RunRecord(config={"name": "x"}, genotype=None, init=None)
    whole, split = tmp_path / "whole" / "compact.safetensors", tmp_path / "split" / "compact.safetensors"
    assert save_compact(whole, state, record, max_mb=1.0) == "fp32"
    single, _ = read_compact(whole)
    save_compact(whole, state, record, max_mb=0.07)  # fp16+bf16 in one file, for the comparison
    rounded, _ = read_compact(whole)
    assert save_compact(split, state, record, max_mb=0.03) == "fp16+bf16"
    files = compact_files(split)
    assert files[0] == split and len(files) >= 3
    assert all(f.stat().st_size <= 30_000 for f in files)
    assert sorted(p.name for p in split.parent.iterdir()) == sorted(f.name for f in files)  # nothing else left
    back, back_record = read_compact(split)
    assert back_record == record and back.epoch == 41 and back.best_miou == 0.25 and torch.equal(back.rng_cpu, state.rng_cpu)
    for k in state.model:
        assert torch.equal(back.model[k], rounded.model[k]), k
        assert torch.allclose(back.model[k], single.model[k], rtol=1e-3, atol=6e-8), k  # fp16: 11 bits, subnormal steps 6e-8
    m = rounded.optimizer["state"][1]["exp_avg_sq"]
    assert torch.equal(back.optimizer["state"][1]["exp_avg_sq"], m)
    # parts are named by content: a new checkpoint of the same epoch writes beside the old header's
    # parts (a crash meanwhile leaves that header whole), then removes them
    before = {f.name for f in files[1:]}
    state.model["0.weight"] = state.model["0.weight"] + 1.0
    save_compact(split, state, record, max_mb=0.03)
    after = {f.name for f in compact_files(split)[1:]}
    assert before - after and {p.name for p in split.parent.iterdir()} == after | {"compact.safetensors"}
    # the next epoch's checkpoint replaces the parts; a smaller one that fits whole leaves none behind
    state.epoch = 42
    save_compact(split, state, record, max_mb=0.03)
    assert {f.name for f in compact_files(split)} == {p.name for p in split.parent.iterdir()}
    assert all(".e00042." in f.name for f in compact_files(split)[1:])
    save_compact(split, state, record, max_mb=1.0)
    assert [p.name for p in split.parent.iterdir()] == ["compact.safetensors"]


def test_a_split_checkpoint_is_copied_whole_and_refused_when_a_part_is_missing_or_altered(tmp_path):
    state, record = _adam_state(), RunRecord(config={}, genotype=None, init=None)
    source = tmp_path / "run" / "compact.safetensors"
    save_compact(source, state, record, max_mb=0.03)
    dest = tmp_path / "carried" / "camvid_x.compact.safetensors"
    written = copy_compact(source, dest)
    assert written == compact_files(dest) and all(f.name.startswith("camvid_x.compact.e00041.part") for f in written[1:])
    assert torch.equal(read_compact(dest)[0].model["0.weight"], read_compact(source)[0].model["0.weight"])
    first_part = written[1]
    data = bytearray(first_part.read_bytes())
    data[-1] ^= 1
    first_part.write_bytes(bytes(data))
    with pytest.raises(TrainingError, match=f"{first_part.name} is not the one this checkpoint wrote"):
        read_compact(dest)
    with pytest.raises(TrainingError, match="SHA-256 differs"):
        copy_compact(dest, tmp_path / "again.safetensors")  # checked before anything is written
    assert not (tmp_path / "again.safetensors").exists()
    first_part.unlink()
    with pytest.raises(TrainingError, match=f"its part {first_part.name} is missing"):
        read_compact(dest)


def test_bad_compact_inputs_are_named_and_write_nothing(toy, tmp_path, capsys):
    from safetensors.torch import save_file

    def refused(args, message):
        assert main(["train", *args, "--quiet"]) != 0
        assert message in capsys.readouterr().err

    not_compact = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(2)}, str(not_compact), metadata={"format": "something else"})
    refused(["--continue-from", str(not_compact), "--out-dir", str(tmp_path / "a")], "model.safetensors: not a compact training checkpoint")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 20)
    refused(["--continue-from", str(garbage), "--out-dir", str(tmp_path / "b")], "garbage.safetensors: cannot read it")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    run = train(_cfg(toy, tmp_path, "run", epochs=1), show_progress=False)
    refused(["--continue-from", str(run.run_dir / COMPACT), "--out-dir", str(tmp_path), "--name", "run"], "already holds a run")
    refused(["--continue-from", str(run.run_dir / COMPACT), "--resume", str(run.run_dir)], "give one")


def test_adam_and_the_linear_warm_up_by_hand(toy, tmp_path):
    cfg = _cfg(toy, tmp_path, "lr", epochs=10, optim__schedule="poly", optim__warmup_epochs=1, optim__lr=0.001)
    iters = 10
    assert learning_rate(cfg, 0, 0, iters) == pytest.approx(0.001 * 0.01)
    assert learning_rate(cfg, 0, 5, iters) == pytest.approx(0.001 * (0.01 + 0.99 * 0.5))
    assert learning_rate(cfg, 1, 0, iters) == pytest.approx(0.001 * (1 - 10 / 100) ** 0.9)  # then poly over the whole run
    opt = make_optimizer(cfg, [torch.nn.Parameter(torch.zeros(3))])
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["weight_decay"] == 0.0001
    assert opt.defaults["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="optim.name"):
        _cfg(toy, tmp_path, "bad", optim__name="lion")


def test_a_pickled_checkpoint_of_an_earlier_version_is_refused_then_converted_and_continues_exactly(toy, tmp_path):
    """Runs started before checkpoints became safetensors hold checkpoint.pt: --resume names the
    file and the converter instead of unpickling it; once converted the run ends as the
    uninterrupted one, bit for bit."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from fasterseg.errors import TrainingError

    full = train(_cfg(toy, tmp_path, "full", compact_every=0), show_progress=False)
    first = train(_cfg(toy, tmp_path, "old", epochs=1, compact_every=0), show_progress=False)
    state = read_compact(first.run_dir / CHECKPOINT)[0]
    legacy = {"model": state.model, "optimizer": state.optimizer, "scaler": state.scaler, "epoch": state.epoch,
              "best_miou": state.best_miou, "history": json.dumps(state.history), "rng_cpu": state.rng_cpu}
    torch.save(legacy, first.run_dir / "checkpoint.pt")  # what the trainer wrote before 2026-12-07
    (first.run_dir / CHECKPOINT).unlink()
    with pytest.raises(TrainingError, match="checkpoint.pt: a checkpoint in the pickle format .*scripts/convert_checkpoint.py"):
        train(_cfg(toy, tmp_path, "old", compact_every=0), resume=True, show_progress=False)
    script = Path(__file__).resolve().parents[2] / "scripts" / "convert_checkpoint.py"
    subprocess.run([sys.executable, str(script), str(first.run_dir)], check=True, capture_output=True, timeout=120)
    assert not (first.run_dir / "checkpoint.pt").exists()
    resumed = train(_cfg(toy, tmp_path, "old", compact_every=0), resume=True, show_progress=False)
    a, b = read_compact(full.run_dir / CHECKPOINT)[0].model, read_compact(resumed.run_dir / CHECKPOINT)[0].model
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_copy_script_lists_what_to_commit_and_names_a_bad_part(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "copy_compact.py"
    source = tmp_path / "run" / "compact.safetensors"
    save_compact(source, _adam_state(), RunRecord(config={}, genotype=None, init=None), max_mb=0.03)
    dest = tmp_path / "results" / "run.compact.safetensors"
    done = subprocess.run([sys.executable, str(script), str(source), str(dest)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(f) for f in compact_files(dest)] and len(done.stdout.split()) >= 3
    compact_files(source)[1].unlink()
    done = subprocess.run([sys.executable, str(script), str(source), str(tmp_path / "other.safetensors")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "is missing" in done.stderr and not (tmp_path / "other.safetensors").exists()
