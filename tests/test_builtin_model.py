"""The CamVid student shipped inside the package: small, self-describing, and it segments road scenes."""

import json

import numpy as np
from PIL import Image

import fasterseg
from fasterseg.cli import main
from fasterseg.models import builtin_model_path


def test_builtin_model_is_small_fp16_and_records_how_it_was_trained():
    path = builtin_model_path()
    assert path.stat().st_size <= 10 * 1024 * 1024
    model = fasterseg.load_model(path)
    assert model.meta.class_names[:4] == ("sky", "building", "pole", "road")
    assert not model.aux_heads
    extra = model.meta.extra
    assert "fasterseg train" in extra["command"] and extra["data"].startswith("camvid:")
    assert 0 < extra["val_mIoU"] <= 1
    if extra.get("val_frames_seen_in_training"):  # trained on every frame: the recipe's held-out score is recorded
        assert 0 < extra["heldout_mIoU"] <= 1 and extra["heldout_note"]


def test_predict_without_model_uses_it_on_a_real_camvid_frame(shared, tmp_path, capsys):
    root = shared / "data" / "camvid"
    image_rel, label_rel = (root / "val.txt").read_text().split("\n")[0].split()
    assert main(["predict", "--input", str(root / image_rel), "--out", str(tmp_path), "--outputs", "labels"]) == 0
    assert "model: the built-in CamVid model (camvid" in capsys.readouterr().err
    pred = np.asarray(Image.open(next((tmp_path / "labels").rglob("*.png"))))
    truth = np.asarray(Image.open(root / label_rel))
    valid = truth != 11
    # Far better than chance (11 classes) on a real frame (the shipped model trained on every frame
    # of train and val; its held-out score is in docs/benchmarks.md).
    assert (pred[valid] == truth[valid]).mean() > 0.6


def test_eval_without_model_scores_it(shared, tmp_path, monkeypatch, capsys):
    from fasterseg.data import registry

    spec = f"camvid:{shared / 'data' / 'camvid'}"
    full = registry.build_dataset(spec, "val")
    full.pairs = full.pairs[:3]  # three real frames keep the test quick
    monkeypatch.setattr(registry, "build_dataset", lambda *a, **k: full)
    out = tmp_path / "r.json"
    assert main(["eval", "--data", spec, "--split", "val", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["average"]["IoU Classes"] > 0.2
    captured = capsys.readouterr()
    assert "model: the built-in CamVid model (camvid" in captured.err
    # val was among its training frames: said under the table, with the held-out score beside it
    assert "this score is not held out" in captured.out and "held-out score recorded in the model file" in captured.out


def test_eval_scores_a_deploy_path_with_the_real_evaluator(shared, tmp_path, monkeypatch):
    """`eval --backend`: the built-in model on ONNX Runtime and OpenVINO (fp32) scores what eager
    PyTorch scores on real frames, within 0.5 mIoU points; multi-view options are eager-only."""
    from fasterseg.data import registry

    spec = f"camvid:{shared / 'data' / 'camvid'}"
    full = registry.build_dataset(spec, "val")
    full.pairs = full.pairs[:3]
    monkeypatch.setattr(registry, "build_dataset", lambda *a, **k: full)
    scores = {}
    for backend in ("eager", "onnxruntime", "openvino"):
        out = tmp_path / f"{backend}.json"
        assert main(["eval", "--data", spec, "--backend", backend, "--json", str(out)]) == 0
        scores[backend] = json.loads(out.read_text())["average"]["IoU Classes"]
    assert abs(scores["onnxruntime"] - scores["eager"]) < 0.005 and abs(scores["openvino"] - scores["eager"]) < 0.005
    assert main(["eval", "--data", spec, "--backend", "openvino", "--flip"]) == 1


def test_info_lists_the_built_in_models_with_their_held_out_scores(capsys):
    from fasterseg.modelfile import read_model_meta
    from fasterseg.models import BUILTIN_NAMES, builtin_models

    assert set(builtin_models()) == set(BUILTIN_NAMES)  # every short name has its file in the package
    assert main(["info", "--models"]) == 0
    out = capsys.readouterr().out
    for name, path in builtin_models().items():
        line = next(row for row in out.splitlines() if row.split()[:1] == [name])
        extra = read_model_meta(path).extra
        assert f"{100 * extra['heldout_mIoU']:.1f}" in line and str(path) in out


def test_int8_weights_of_the_built_in_model_label_a_real_frame_as_it_does(shared, tmp_path):
    """int8 storage (per-channel convolution weights) changes almost no label of a real frame: the
    file shrinks to about half of fp16 for networks that would not fit the 10 MB a shipped file takes."""
    import torch

    from fasterseg.data.transforms import normalize
    from fasterseg.modelfile import convert_model_file

    path = builtin_model_path()
    int8 = convert_model_file(path, tmp_path / "int8.safetensors", weights="int8")
    assert int8.stat().st_size < 0.6 * path.stat().st_size
    root = shared / "data" / "camvid"
    image_rel = (root / "val.txt").read_text().split("\n")[0].split()[0]
    image = np.asarray(Image.open(root / image_rel).convert("RGB"))
    reference, quantised = fasterseg.load_model(path), fasterseg.load_model(int8)
    x = normalize(torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255, reference.meta.mean,
                  reference.meta.std).unsqueeze(0)
    with torch.no_grad():
        agree = (reference(x).argmax(1) == quantised(x).argmax(1)).double().mean()
    assert float(agree) > 0.99
