"""CPU training at the hardware's speed: bf16 autocast and channels_last, the decoded cache,
several splits read as one, and augmentation that survives a resume."""

from __future__ import annotations

import json

import pytest
import torch

from fasterseg.config import load_config
from fasterseg.data.base import ConcatDataset
from fasterseg.train.config import TrainConfig
from fasterseg.train.compact import read_compact
from fasterseg.train.trainer import CHECKPOINT, train
from fasterseg.utils.device import bf16_supported, resolve_precision


JITTER = ["data.photometric.brightness=0.3", "data.photometric.contrast=0.3", "data.photometric.saturation=0.3",
          "data.photometric.hue=0.05", "data.photometric.blur_prob=0.5", "data.photometric.noise=0.03"]


def _cfg(toy, out, name, *extra: str) -> TrainConfig:
    spec, geno = toy
    overrides = [f"genotype={geno}", f"data.spec={spec}", f"out_dir={out}", f"name={name}", "epochs=2",
                 "iters_per_epoch=6", "batch_size=4", "data.crop_size=[64, 64]", "data.workers=0", "val_every=1",
                 "optim.lr=0.05", "log_every=2", *extra]
    return load_config(TrainConfig, None, overrides)


@pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU has no native bf16 (AVX512-BF16/AMX)")
def test_bf16_channels_last_cpu_training_lowers_the_loss(toy, tmp_path):
    result = train(_cfg(toy, tmp_path, "bf16", "precision=bf16", "channels_last=true", "epochs=4"), show_progress=False)
    losses = [h["loss"] for h in result.history]
    assert all(map(lambda x: x == x, losses)) and losses[-1] < 0.8 * losses[0]
    resolved = json.loads((result.run_dir / "resolved.json").read_text())
    assert resolved["precision"] == "bf16" and resolved["channels_last"] is True
    assert result.best_miou > 0.3  # the toy scenes are learnt, not just the loss lowered
    # the model file holds fp32 weights whatever the training precision
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(str(result.model_path)).values() if t.is_floating_point()} == {torch.float32}


def test_auto_precision_follows_the_cpu_and_bf16_without_it_falls_back_with_a_note(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if bf16_supported(cpu) else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32"
    import fasterseg.utils.device as device

    monkeypatch.setattr(device, "bf16_supported", lambda d: False)  # a CPU without bf16 units
    notes = []
    assert device.resolve_precision("bf16", cpu, note=notes.append) == "fp32"
    assert len(notes) == 1 and "fp32" in notes[0]
    assert device.resolve_precision("auto", cpu) == "fp32"
    from fasterseg.errors import ConfigError

    with pytest.raises(ConfigError, match="fp16"):
        device.resolve_precision("fp16", cpu)


def test_two_splits_are_read_once_each_per_epoch(toy, tmp_path, monkeypatch):
    seen: list[str] = []
    original = ConcatDataset.__getitem__

    def spy(self, index):
        seen.append(self.name(index))
        return original(self, index)

    monkeypatch.setattr(ConcatDataset, "__getitem__", spy)
    # 8 train + 4 val frames, batch 4, one pass: 3 iterations that must visit all 12
    cfg = _cfg(toy, tmp_path, "both", "data.train_split=[train, val]", "iters_per_epoch=0", "epochs=2", "val_every=-1")
    result = train(cfg, show_progress=False)
    names = {f"train_{i:03d}" for i in range(8)} | {f"val_{i:03d}" for i in range(4)}
    assert len(seen) == 24 and set(seen[:12]) == names and set(seen[12:]) == names
    assert json.loads((result.run_dir / "resolved.json").read_text())["train_samples"] == 12


def test_resume_with_photometric_jitter_and_class_weights_continues_exactly(toy, tmp_path):
    extra = [*JITTER, "loss.class_weight=median_frequency", "data.scales=[0.75, 1.0, 1.5]"]
    full = train(_cfg(toy, tmp_path, "full", *extra), show_progress=False)
    train(_cfg(toy, tmp_path, "split", *extra, "epochs=1"), show_progress=False)
    resumed = train(_cfg(toy, tmp_path, "split", *extra), resume=True, show_progress=False)
    a = read_compact(full.run_dir / CHECKPOINT)[0].model
    b = read_compact(resumed.run_dir / CHECKPOINT)[0].model
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    weights = json.loads((full.run_dir / "resolved.json").read_text())["class_weight"]
    assert weights["car"] > weights["road"] > 0  # the toy's car box is rarer than its road


def test_the_cache_serves_training_and_is_reused(toy, tmp_path):
    train(_cfg(toy, tmp_path, "one", "epochs=1"), show_progress=False)
    cache = tmp_path / ".cache" / "data"
    built = sorted(p.name for p in cache.iterdir())
    assert len([n for n in built if n.endswith(".u8")]) == 2  # train and val
    train(_cfg(toy, tmp_path, "two", "epochs=1"), show_progress=False)
    assert sorted(p.name for p in cache.iterdir()) == built


def test_resume_keeps_one_row_per_logged_step_reads_its_own_genotype_and_saves_changed_settings(toy, tmp_path):
    import csv

    spec, geno = toy
    moved = tmp_path / "g.json"
    moved.write_text(open(geno).read())
    first = train(_cfg(toy, tmp_path, "r", f"genotype={moved}", "epochs=1"), show_progress=False)
    # an interrupted second epoch had logged rows, and an epoch row written before its checkpoint
    with open(first.run_dir / "train_log.csv", "a") as f:
        f.write("2,2,9.9,0.01,1.0\n")
    with open(first.run_dir / "epochs.csv", "a") as f:
        f.write("2,9.9,0.01,1.0,,\n")
    moved.unlink()  # the genotype it was started with is gone; the run folder has its own copy
    train(_cfg(toy, tmp_path, "r", f"genotype={moved}", "epochs=2"), resume=True, show_progress=False)
    rows = list(csv.DictReader(open(first.run_dir / "train_log.csv")))
    assert [(r["epoch"], r["iter"]) for r in rows] == [("1", "2"), ("1", "4"), ("1", "6"), ("2", "2"), ("2", "4"), ("2", "6")]
    assert "9.9" not in {r["loss"] for r in rows}
    assert [r["epoch"] for r in csv.DictReader(open(first.run_dir / "epochs.csv"))] == ["1", "2"]
    import yaml

    assert yaml.safe_load((first.run_dir / "config.yaml").read_text())["epochs"] == 2


def test_a_corrupt_checkpoint_is_refused_by_name(toy, tmp_path):
    from fasterseg.errors import TrainingError

    first = train(_cfg(toy, tmp_path, "c", "epochs=1"), show_progress=False)
    (first.run_dir / CHECKPOINT).write_bytes(b"\x00" * 100)
    with pytest.raises(TrainingError, match="checkpoint.safetensors: cannot resume"):
        train(_cfg(toy, tmp_path, "c", "epochs=2"), resume=True, show_progress=False)


def test_a_split_over_the_cache_limit_is_read_from_its_files_with_a_note(toy, tmp_path, capsys):
    from fasterseg.data.cache import cache_bytes
    from fasterseg.data.registry import build_dataset

    assert cache_bytes(build_dataset(toy[0], "train")) == 8 * 64 * 96 * 4  # 8 frames of 64x96, 4 bytes a pixel
    train(_cfg(toy, tmp_path, "big", "epochs=1", "data.cache_max_gb=1e-5", "val_every=-1"), show_progress=True)
    captured = capsys.readouterr()
    assert "reading its files instead" in captured.out + captured.err
    assert not (tmp_path / ".cache" / "data").exists() or not list((tmp_path / ".cache" / "data").glob("*.u8"))
