"""Inputs that used to destroy files or abort whole jobs (issue 18): each case fails on the old code."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from fasterseg.cli import main





def _png(path, size=(40, 50), value=100):
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path


def _bomb(path, side=20000):
    """A 65-byte PNG whose header claims side x side pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def test_predict_refuses_to_replace_a_ground_truth_label_in_out(model_file, tmp_path):
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "labels").mkdir()
    _png(tmp_path / "d" / "images" / "f.png")
    truth = tmp_path / "d" / "labels" / "f.png"
    Image.fromarray(np.full((40, 50), 3, np.uint8)).save(truth)
    before = truth.read_bytes()
    rc = main(["predict", "--model", str(model_file), "--input", str(tmp_path / "d" / "images"), "--out",
               str(tmp_path / "d"), "--outputs", "labels"])
    assert rc != 0 and truth.read_bytes() == before
    # with --overwrite the user says so, and it is replaced
    assert main(["predict", "--model", str(model_file), "--input", str(tmp_path / "d" / "images"), "--out",
                 str(tmp_path / "d"), "--outputs", "labels", "--overwrite"]) == 0
    assert truth.read_bytes() != before


def test_predict_never_writes_over_its_own_input_even_with_overwrite(model_file, tmp_path):
    (tmp_path / "labels").mkdir()
    image = _png(tmp_path / "labels" / "x.png")
    before = image.read_bytes()
    rc = main(["predict", "--model", str(model_file), "--input", str(image), "--out", str(tmp_path),
               "--outputs", "labels", "--overwrite"])
    assert rc != 0 and image.read_bytes() == before


def test_export_and_import_refuse_an_output_equal_to_an_input(model_file, tmp_path, official_dir):
    copy = tmp_path / "m.safetensors"
    copy.write_bytes(model_file.read_bytes())
    before = copy.read_bytes()
    assert main(["export", "--model", str(copy), "--out", str(copy), "--size", "64x64"]) != 0
    assert copy.read_bytes() == before
    arch = tmp_path / "arch_1.pt"
    arch.write_bytes((official_dir / "arch_1.pt").read_bytes())
    original = arch.read_bytes()
    assert main(["import-official", "--arch", str(arch), "--out", str(tmp_path / "." / "arch_1.pt")]) != 0
    assert arch.read_bytes() == original


def test_a_decompression_bomb_is_skipped_and_counted_and_the_rest_segmented(model_file, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _bomb(inputs / "a_bomb.png")
    _png(inputs / "b_fine.png")
    rc = main(["predict", "--model", str(model_file), "--input", str(inputs), "--out", str(tmp_path / "out"),
               "--outputs", "labels"])
    assert rc == 1  # one input failed
    assert [p.name for p in (tmp_path / "out" / "labels").iterdir()] == ["b_fine.png"]


@pytest.mark.parametrize("size", [(1, 1), (20, 30), (32, 32), (64, 16), (33, 200)])
def test_tiny_images_are_segmented_at_their_own_size(model_file, size):
    import fasterseg
    from fasterseg.infer.predictor import Predictor

    model = fasterseg.load_model(model_file)
    assert model(torch.zeros(1, 3, *size)).shape == (1, 11, *size)
    image = np.full((*size, 3), 90, np.uint8)
    assert Predictor(model).predict([image])[0].shape == size
    assert Predictor(model, tile=(16, 16)).predict([image])[0].shape == size


def test_tiny_tiles_on_a_large_image_give_its_size(model_file):
    import fasterseg
    from fasterseg.infer.predictor import Predictor

    model = fasterseg.load_model(model_file)
    image = np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8)
    labels = Predictor(model, tile=(16, 16)).predict([image])[0]
    assert labels.shape == (100, 150)


def test_a_16_bit_grey_png_keeps_its_picture():
    import tempfile
    from pathlib import Path

    from fasterseg.data.base import read_image

    grey = (np.arange(40 * 50).reshape(40, 50) * 30).astype(np.uint16)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g16.png"
        Image.fromarray(grey).save(path)
        assert Image.open(path).mode == "I;16"
        rgb = read_image(path)
    assert rgb.shape == (40, 50, 3) and np.array_equal(rgb[..., 0], (grey >> 8).astype(np.uint8))
    assert rgb.min() == 0 and rgb.max() == grey.max() >> 8  # not the all-white picture PIL's conversion gives


def test_a_camvid_label_outside_its_ids_is_an_error_naming_the_file(tmp_path):
    from fasterseg.errors import DatasetError
    from fasterseg.data.registry import build_dataset

    from tests.helpers import write_toy_camvid

    spec = write_toy_camvid(tmp_path / "camvid", n_train=2, n_val=1)
    label_path = tmp_path / "camvid" / "trainannot" / "train_001.png"
    label = np.array(Image.open(label_path))
    label[0, 0] = 200
    Image.fromarray(label).save(label_path)
    data = build_dataset(spec, "train")
    data[0]  # untouched frame reads
    with pytest.raises(DatasetError, match="train_001.png.*200"):
        data[1]
    label[0, 0] = 11  # void is fine, and ignored
    Image.fromarray(label).save(label_path)
    assert data[1][1][0, 0] == 255


def test_outputs_are_written_with_the_umask_not_private(tmp_path):
    import os

    from fasterseg.utils.io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("setting", ["optim.lr=-5", "optim.lr=0", "data.crop_size=[0, 0]", "data.scales=[0.0]",
                                     "optim.momentum=1.5"])
def test_impossible_training_settings_fail_before_a_run_folder_is_made(tmp_path, setting):
    from fasterseg.config import load_config
    from fasterseg.errors import ConfigError
    from fasterseg.train.config import TrainConfig

    with pytest.raises(ConfigError, match=setting.split("=")[0].split(".")[-1]):
        load_config(TrainConfig, None, [setting, f"out_dir={tmp_path}"])
    assert list(tmp_path.iterdir()) == []


BIG_HEADER = """
import json, resource, sys
from safetensors import safe_open
from safetensors.torch import load_file, save_file
import fasterseg
from fasterseg.errors import FasterSegError
src, dst = sys.argv[1], sys.argv[2]
with safe_open(src, "pt") as f:
    meta = dict(f.metadata())
genotype = json.loads(meta["genotype"])
genotype["base_channels"] *= 8  # 64x the parameters: over 1 GB of fp32 were allocated before any check
meta["genotype"] = json.dumps(genotype)
save_file(load_file(src), dst, metadata=meta)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    fasterseg.load_model(dst)
    print("loaded")
except FasterSegError as exc:
    print("refused", "mis-shaped" in str(exc))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_header_describing_a_huge_network_is_refused_before_allocating_it(tmp_path):
    import subprocess
    import sys

    from fasterseg.models import builtin_model_path

    out = subprocess.run([sys.executable, "-c", BIG_HEADER, str(builtin_model_path()), str(tmp_path / "huge.safetensors")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    verdict, grown_mb = out.stdout.split("\n")[0], int(out.stdout.split("\n")[1])
    assert verdict == "refused True"
    assert grown_mb < 300  # the network it describes would take ~1100 MB


@pytest.mark.parametrize("field, value, message", [
    ("mean", '"abc"', "'mean' must be 3 numbers"),
    ("std", "[0, 0, 0]", "'std' must be 3 positive numbers"),
    ("class_names", "5", "'class_names' must list"),
    ("train_size", '"big"', "'train_size' must be 2 positive integers"),
])
def test_bad_header_fields_are_refused_by_name(model_file, tmp_path, field, value, message):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    import fasterseg
    from fasterseg.errors import ModelFileError

    with safe_open(str(model_file), "pt") as f:
        header = dict(f.metadata())
    header[field] = value
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(str(model_file)), str(bad), metadata=header)
    with pytest.raises(ModelFileError, match=message):
        fasterseg.load_model(bad)


def test_import_official_explains_an_empty_arch_file_and_a_bad_size(tmp_path, capsys):
    empty = tmp_path / "arch.pt"
    empty.write_bytes(b"")
    assert main(["import-official", "--arch", str(empty), "--out", str(tmp_path / "m.safetensors")]) == 1
    assert "not a readable PyTorch file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["import-official", "--arch", str(empty), "--train-size", "foo", "--out", str(tmp_path / "m.safetensors")])
    assert exit_info.value.code == 2 and "HEIGHTxWIDTH" in capsys.readouterr().err


def test_unwritable_outputs_fail_before_the_work(model_file, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a folder is needed
    image = _png(tmp_path / "img.png")
    assert main(["predict", "--model", str(model_file), "--input", str(image), "--out", str(blocker / "out")]) != 0
    assert "cannot create" in capsys.readouterr().err
    assert main(["export", "--model", str(model_file), "--out", str(blocker / "m.onnx"), "--size", "64x64"]) != 0
    assert "cannot create" in capsys.readouterr().err
    assert main(["eval", "--model", str(model_file), "--data", f"camvid:{tmp_path}", "--json", str(blocker / "r.json")]) != 0
    assert "cannot create" in capsys.readouterr().err


def test_a_looping_link_in_an_input_folder_is_named_in_a_note(model_file, tmp_path, capsys):
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a.png")
    os.symlink("loop", folder / "loop")  # a link to itself
    assert main(["predict", "--model", str(model_file), "--input", str(folder), "--out", str(tmp_path / "out"),
                 "--outputs", "labels"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 entry leading to no file" in err and "loop" in err
    assert [p.name for p in (tmp_path / "out" / "labels").iterdir()] == ["a.png"]
