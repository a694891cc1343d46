"""Odd input ends in a one-line error naming what is wrong (exit 1 or argparse's 2), never a
traceback, and writes nothing half (issue 35). Each case failed with a traceback before."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
from PIL import Image

from fasterseg.cli import main
from fasterseg.nets.network import FasterSegNet

from tests.helpers import tiny_genotype




def _one_line(capsys, code: int, expected: str, status: int = 1) -> None:
    err = capsys.readouterr().err
    assert code == status, err
    assert "Traceback" not in err and expected in err, err


def test_a_camera_index_beyond_any_device(model_file, tmp_path, capsys):
    code = main(["predict", "--model", str(model_file), "--input", "camera:99999999999999999999", "--out", str(tmp_path)])
    _one_line(capsys, code, "camera:99999999999999999999: cannot open camera")


@pytest.mark.parametrize("command", ["predict", "eval", "bench"])
def test_a_device_that_is_no_device(model_file, tmp_path, capsys, command):
    args = {"predict": ["--input", str(tmp_path), "--out", str(tmp_path / "o")], "eval": ["--data", "synth:x"],
            "bench": ["--size", "64x64"]}[command]
    with pytest.raises(SystemExit) as stop:
        main([command, "--model", str(model_file), "--device", "nonsense", *args])
    assert stop.value.code == 2
    assert "not a device: 'nonsense'" in capsys.readouterr().err


@pytest.mark.parametrize("scale", ["0", "-1"])
def test_eval_scales_must_be_positive(model_file, capsys, scale):
    with pytest.raises(SystemExit):
        main(["eval", "--model", str(model_file), "--data", "synth:x", "--scales", scale])
    assert "must be above 0" in capsys.readouterr().err


def test_freezing_every_module_or_changing_freeze_on_resume(tmp_path, capsys):
    from tests.helpers import write_toy_camvid

    spec = write_toy_camvid(tmp_path / "toy")
    geno = tmp_path / "g.json"
    tiny_genotype().save(geno)
    common = ["--genotype", str(geno), "--data", spec, "--out-dir", str(tmp_path / "runs"), "--quiet", "--set", "epochs=2",
              "--set", "iters_per_epoch=1", "--set", "batch_size=2", "--set", "data.crop_size=[32,32]",
              "--set", "data.workers=0", "--set", "val_every=0"]
    names = {k.split(".")[0] for k in FasterSegNet(tiny_genotype(), aux_heads=True).state_dict()}
    everything = f"freeze=[{', '.join(sorted(names))}]"
    _one_line(capsys, main(["train", *common, "--name", "all", "--set", everything]), "leaves no parameter to train")
    assert not (tmp_path / "runs" / "all" / "checkpoint.safetensors").exists()
    assert main(["train", *common, "--name", "run", "--set", "epochs=1"]) == 0
    capsys.readouterr()
    code = main(["train", "--resume", str(tmp_path / "runs" / "run"), "--set", "epochs=2", "--set", "freeze=stem", "--quiet"])
    _one_line(capsys, code, "cannot change on --resume")


def _history(run, entry: dict | bytes) -> None:
    folder = run / "search" / "history"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "epoch_001_student.json"
    path.write_bytes(entry if isinstance(entry, bytes) else json.dumps(entry).encode())


def _entry(**changes) -> dict:
    entry = {"epoch": 1, "arch": "student", "genotype": tiny_genotype().to_dict(), "miou": {"8_32": 0.3},
             "latency_ms": {"8_32": 10.0}, "latency_weight": 0.01, "fps_window": [50, 150]}
    entry.update(changes)
    return entry


@pytest.mark.parametrize("case", ["not utf-8", "empty miou", "empty latency"])
def test_pick_on_a_damaged_history_names_the_file(tmp_path, capsys, case):
    entry = {"not utf-8": b"\xff\xfe{\x80", "empty miou": _entry(miou={}), "empty latency": _entry(latency_ms="")}[case]
    _history(tmp_path, entry)
    _one_line(capsys, main(["search", "--pick", str(tmp_path)]), "epoch_001_student.json: not a search history entry")


def test_pick_into_a_read_only_run_or_onto_a_file(tmp_path, capsys):
    _history(tmp_path, _entry())
    (tmp_path / "picked").write_text("a file where the folder goes")
    _one_line(capsys, main(["search", "--pick", str(tmp_path)]), "picked")


@pytest.mark.parametrize("target", ["json", "csv"])
def test_a_full_disk_is_said_plainly_and_leaves_nothing_half_written(model_file, tmp_path, capsys, monkeypatch, target):
    """ENOSPC injected at the write seam (every output goes through utils.io): one line that says
    the disk is full, naming the file, and no partial file."""
    from tests.helpers import write_toy_camvid
    import fasterseg.utils.io as io

    spec = write_toy_camvid(tmp_path / "toy")
    real_fsync = io._fsync

    def full(path):
        if path.is_file() and path.name.startswith(f".r.{target}"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_fsync(path)

    monkeypatch.setattr(io, "_fsync", full)
    out = tmp_path / f"r.{target}"
    code = main(["eval", "--model", str(model_file), "--data", spec, "--split", "val", f"--{target}", str(out)])
    _one_line(capsys, code, f"{out}: no space left on the device")  # the output's name, not its temporary's
    assert not out.exists() and not list(tmp_path.glob(f".r.{target}*"))


def test_predict_with_no_output_kind_or_a_file_as_out(model_file, tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(image)
    _one_line(capsys, main(["predict", "--model", str(model_file), "--input", str(image), "--out", str(tmp_path / "o"),
                            "--outputs", ""]), "--outputs names no output kind")
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_line(capsys, main(["predict", "--model", str(model_file), "--input", str(image), "--out", str(afile)]),
              f"{afile}: is a file, expected a folder")


def test_init_from_a_genotype_or_a_broken_model(model_file, tmp_path, capsys):
    from fasterseg.modelfile import read_model_file
    from safetensors.torch import save_file
    from tests.helpers import write_toy_camvid

    spec = write_toy_camvid(tmp_path / "toy")
    geno = tmp_path / "g.json"
    tiny_genotype().save(geno)
    args = ["--data", spec, "--out-dir", str(tmp_path / "runs"), "--quiet", "--set", "epochs=1"]
    _one_line(capsys, main(["train", "--init", str(geno), *args]), "a genotype JSON goes in --genotype")
    state, meta = read_model_file(model_file)
    state = {k: v.clone() for k, v in state.items()}
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first].view(-1)[0] = float("nan")
    broken = tmp_path / "nan.safetensors"
    save_file(state, str(broken), metadata=meta.to_header())
    _one_line(capsys, main(["train", "--init", str(broken), *args]), "hold NaN or infinite values")
