"""``fasterseg search`` with the tiny config: pretrain, search from it, resume, refusals."""

from pathlib import Path

from fasterseg.cli import main
from tests.search.test_data_and_loop import write_camvid

TINY = str(Path(__file__).resolve().parents[2] / "configs" / "search" / "tiny.yaml")


def test_pretrain_then_search_from_the_command_line(tmp_path, capsys):
    data = write_camvid(tmp_path / "camvid", n=4, size=(128, 160), splits=("train", "val"))
    common = ["--config", TINY, "--set", f"train_data=camvid:{data}", "--set", f"val_data=camvid:{data}",
              "--set", "iters_per_epoch=1", "--set", "downsample=1"]
    assert main(["search", *common, "--out", str(tmp_path / "pre")]) == 0
    assert "epoch 1: weight loss" in capsys.readouterr().out
    args = ["search", *common, "--set", "pretrain=false", "--set", "epochs=1",
            "--init", str(tmp_path / "pre" / "weights.safetensors"), "--out", str(tmp_path / "search")]
    # The command has no latency model yet: a positive latency weight is refused, naming the key.
    assert main(args) == 1
    assert "latency_weights" in capsys.readouterr().err
    assert main(args + ["--set", "latency_weights.student=0"]) == 0
    assert "arch loss" in capsys.readouterr().out
    assert (tmp_path / "search" / "arch.json").is_file()
    # Same directory again without --resume: refused.
    assert main(["search", *common, "--out", str(tmp_path / "pre")]) == 1
    assert "already holds a run" in capsys.readouterr().err
    # --resume on a finished run: nothing left to do, nothing changes.
    before = (tmp_path / "pre" / "log.csv").read_text()
    assert main(["search", *common, "--out", str(tmp_path / "pre"), "--resume"]) == 0
    assert (tmp_path / "pre" / "log.csv").read_text() == before


def test_every_shipped_search_config_loads():
    from fasterseg.config import load_config
    from fasterseg.search.loop import SearchConfig

    configs = sorted((Path(__file__).resolve().parents[2] / "configs" / "search").glob("*.yaml"))
    assert len(configs) >= 4
    loaded = {p.stem: load_config(SearchConfig, p) for p in configs}
    assert loaded["cityscapes_search"].crop == [224, 448] and not loaded["cityscapes_search"].pretrain
    assert loaded["cityscapes_pretrain"].supernet.layers == 16 and loaded["cityscapes_pretrain"].lr == 0.02
    assert loaded["camvid_pretrain"].supernet.num_classes == 11
