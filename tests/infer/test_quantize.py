"""int8: calibration refuses data that does not fit the model, the file appears whole or not at
all, and the int8 paths keep a trained model's labels on real frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fasterseg.cli import main
from fasterseg.errors import CalibrationError, ExportError
from fasterseg.infer.export import export_onnx, ort_session
from fasterseg.infer.quantize import Calibration, calibration_set, quantize_onnx
from fasterseg.infer.runners import RunnerOptions, build_runner
from tests.infer.conftest import tiny_model


def test_calibration_refuses_a_dataset_of_another_class_count(synth_root):
    with pytest.raises(CalibrationError, match="has 19 classes, but the model predicts 11"):
        calibration_set(f"synth:{synth_root}", "train", 2, num_classes=11)


def test_calibration_refuses_images_of_another_size_naming_the_file(synth_root):
    with pytest.raises(CalibrationError, match=r"\.png: calibration image is 128x256, but the graph is calibrated at 64x128"):
        calibration_set(f"synth:{synth_root}", "train", 2, num_classes=19, size=(64, 128))


def test_calibration_spreads_its_images_over_the_split_and_normalises_them(synth_root):
    calib = calibration_set(f"synth:{synth_root}", "train", 2, num_classes=19)
    assert calib.size == (128, 256) and len(calib.batches) == 2
    assert all(b.shape == (1, 3, 128, 256) and b.dtype == np.float32 for b in calib.batches)
    assert abs(float(np.mean(calib.batches[0]))) < 3  # normalised, not 0..255 pixels
    assert not np.array_equal(calib.batches[0], calib.batches[1])  # first and last image, not one twice
    with pytest.raises(CalibrationError, match="at least 1"):
        calibration_set(f"synth:{synth_root}", "train", 0, num_classes=19)


def _random_calibration(size=(64, 96), count=3) -> Calibration:
    rng = np.random.default_rng(0)
    return Calibration(tuple(rng.standard_normal((1, 3, *size), dtype=np.float32) for _ in range(count)), "random", size)


def test_quantized_graph_holds_int8_weights_and_keeps_the_labels(tmp_path, monkeypatch):
    model = tiny_model()
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(model, fp32, size=(64, 96), output="logits", check=False, dynamic=True)
    calib = _random_calibration()
    monkeypatch.chdir(tmp_path)  # the quantiser's scratch files must not land in the working directory
    out = quantize_onnx(fp32, tmp_path / "int8.onnx", calib)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp32.onnx", "int8.onnx"]
    import onnx

    graph = onnx.load(str(out)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    assert int8_weights, "convolution weights should be stored as int8"
    x = calib.batches[0]
    want = ort_session(fp32).run(None, {"image": x})[0]
    got = ort_session(out).run(None, {"image": x})[0]
    assert got.shape == want.shape
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.9  # on an input of the calibrated kind


def test_a_failed_quantisation_leaves_the_existing_file_and_no_temporary(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    out = tmp_path / "model.int8.onnx"
    out.write_bytes(b"previous file")
    with pytest.raises(ExportError, match="broken.onnx: int8 quantisation failed"):
        quantize_onnx(broken, out, _random_calibration())
    assert out.read_bytes() == b"previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx", "model.int8.onnx"]


def test_export_int8_refuses_wrong_calibration_and_writes_nothing(synth_root, tmp_path, capsys):
    from tests.infer.conftest import tiny_model_file

    model = tiny_model_file(tmp_path / "m.safetensors", num_classes=5)
    out = tmp_path / "m.int8.onnx"
    args = ["export", "--model", model, "--out", str(out), "--precision", "int8"]
    assert main(args) == 1
    assert "needs calibration images: pass --calib DATA" in capsys.readouterr().err
    assert main(args + ["--calib", f"synth:{synth_root}"]) == 1
    assert "has 19 classes, but the model predicts 5" in capsys.readouterr().err
    assert not out.exists()


def test_export_int8_writes_a_graph_onnx_runtime_runs(synth_root, tmp_path, capsys):
    from tests.infer.conftest import tiny_model_file

    model = tiny_model_file(tmp_path / "m.safetensors", num_classes=19)
    out = tmp_path / "m.int8.onnx"
    assert main(["export", "--model", model, "--out", str(out), "--precision", "int8", "--output", "labels",
                 "--calib", f"synth:{synth_root}", "--calib-images", "2"]) == 0
    assert "calibrated on 2 images" in capsys.readouterr().out
    labels = ort_session(out).run(None, {"image": np.zeros((1, 3, 128, 256), np.float32)})[0]
    assert labels.shape == (1, 128, 256) and labels.dtype == np.uint8  # auto, export's default: half at 128 rows
    props = ort_session(out).get_modelmeta().custom_metadata_map  # carried over from the fp32 graph
    assert props["fasterseg.output"].startswith("class index") and len(json.loads(props["fasterseg.class_names"])) == 19
    assert "uint8" in props["fasterseg.output"] and "label path half" in props["fasterseg.output"]


@pytest.fixture(scope="module")
def camvid_frames(shared):
    """Three real CamVid frames from the held-out sequence, normalised, and calibration images
    from the training sequences."""
    from fasterseg.data.registry import build_dataset
    from fasterseg.data.transforms import EvalTransform

    spec = f"camvid:{shared / 'data' / 'camvid'}"
    val = build_dataset(spec, "seq_val", EvalTransform())
    frames = torch.stack([val[i][0] for i in (0, 50, 100)])
    return spec, frames, calibration_set(spec, "seq_train", 8, num_classes=11)


@pytest.fixture(scope="module")
def shared_onnx_dir(tmp_path_factory):
    """One folder for both int8 paths: the QDQ graph is made once and read by both runtimes."""
    return tmp_path_factory.mktemp("int8_graphs")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_int8_paths_keep_the_trained_models_labels_on_real_frames(backend, camvid_frames, shared_onnx_dir):
    """The built-in model, calibrated on 8 training frames: on held-out frames its int8 labels
    equal its fp32 labels on at least 97% of pixels (on all 101 held-out frames the int8 paths
    score within 0.2 mIoU of fp32: docs/benchmarks.md)."""
    import fasterseg
    from fasterseg.models import builtin_model_path

    pytest.importorskip(backend)
    _, frames, calibration = camvid_frames
    model = fasterseg.load_model(builtin_model_path())
    with torch.no_grad():
        reference = model(frames).argmax(1)
    runner = build_runner(model, RunnerOptions(backend, precision="int8", calibration=calibration, onnx_dir=shared_onnx_dir,
                                               threads=2))
    got = runner.labels(frames)
    assert got.shape == reference.shape
    assert (got == reference).float().mean() > 0.97


def test_calibration_reads_images_only(tmp_path):
    """A folder dataset whose calibration split has images and no labels: labels are not used,
    so they are not required (issue 35)."""
    from PIL import Image

    root = tmp_path / "mine"
    (root / "images" / "calib").mkdir(parents=True)
    (root / "dataset.yaml").write_text("classes: [background, crack, rust]\n")
    for i in range(3):
        Image.fromarray(np.full((32, 48, 3), 40 * i, np.uint8)).save(root / "images" / "calib" / f"{i}.png")
    calibration = calibration_set(f"folder:{root}", "calib", 2, num_classes=3)
    assert len(calibration.batches) == 2 and calibration.size == (32, 48)
    assert calibration.batches[0].shape == (1, 3, 32, 48)
    with pytest.raises(CalibrationError, match="has 3 classes, but the model predicts 5"):
        calibration_set(f"folder:{root}", "calib", 2, num_classes=5)


@pytest.mark.skipif(__import__("platform").machine().lower() not in ("x86_64", "amd64"), reason="reads x86 CPU flags")
def test_weights_lose_a_bit_only_where_the_cpu_has_no_int8_dot_product(tmp_path):
    """An x86 CPU without VNNI or AMX saturates pairs of int8 products in 16 bits, so the quantiser keeps
    weights to 7 bits there; with VNNI (AVX-512 or AVX) or AMX it keeps 8; unreadable flags count as none."""
    from fasterseg.infer.quantize import has_int8_dot_product

    cpuinfo = tmp_path / "cpuinfo"
    for flags, expected in (("fpu sse2 avx2 fma", False), ("avx2 avx512f avx512_vnni", True),
                            ("avx2 avx_vnni", True), ("avx512f amx_tile amx_int8", True)):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert has_int8_dot_product(cpuinfo) is expected, flags
    assert has_int8_dot_product(tmp_path / "missing") is False
