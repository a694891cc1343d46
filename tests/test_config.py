from dataclasses import dataclass, field

import pytest

from fasterseg.config import load_config, save_config
from fasterseg.errors import ConfigError


@dataclass
class Optim:
    lr: float = 0.01
    momentum: float = 0.9
    milestones: tuple[int, ...] = (10, 20)


@dataclass
class Cfg:
    name: str = "run"
    epochs: int = 3
    amp: bool = False
    size: tuple[int, int] = (256, 512)
    teacher: str | None = None
    optim: Optim = field(default_factory=Optim)


def test_defaults_file_and_overrides_apply_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\noptim:\n  lr: 0.1\n")
    cfg = load_config(Cfg, path, ["optim.lr=0.5", "size=[128, 256]", "teacher=t.safetensors", "amp=true"])
    assert cfg.epochs == 5 and cfg.optim.lr == 0.5 and cfg.optim.momentum == 0.9
    assert cfg.size == (128, 256) and cfg.teacher == "t.safetensors" and cfg.amp is True
    save_config(cfg, tmp_path / "out.yaml")
    assert load_config(Cfg, tmp_path / "out.yaml") == cfg


@pytest.mark.parametrize("override, key", [
    ("optim.lrr=1", "optim.lrr"), ("epochs=three", "epochs"), ("size=[1]", "size"),
    ("amp=maybe", "amp"), ("nokey", "key=value"), ("epochs.x=1", "epochs"),
])
def test_bad_overrides_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace(".", r"\.")):
        load_config(Cfg, None, [override])


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  lrate: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*optim\.lrate"):
        load_config(Cfg, path)


def test_scientific_notation_without_a_dot_is_a_number():
    assert load_config(Cfg, None, ["optim.lr=1e-3"]).optim.lr == 1e-3


def test_a_renamed_key_still_loads_from_files_runs_and_overrides(tmp_path):
    """val_batches became val_images: a config file or a run folder written before, and a --set
    with the old name, all set the new field; the old name is not written back."""
    from fasterseg.config import load_config, to_dict
    from fasterseg.train.config import TrainConfig

    old = tmp_path / "old.yaml"
    old.write_text("val_batches: 5\nepochs: 3\n")
    assert load_config(TrainConfig, old).val_images == 5
    assert load_config(TrainConfig, None, ["val_batches=2"]).val_images == 2
    assert load_config(TrainConfig, old, ["val_images=7"]).val_images == 7
    assert "val_batches" not in to_dict(load_config(TrainConfig, old))
