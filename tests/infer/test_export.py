"""ONNX export: the graph reproduces PyTorch in ONNX Runtime and keeps the training resizes."""

import numpy as np
import onnx
import pytest
import torch

from fasterseg.cli import main
from fasterseg.infer.export import export_onnx, ort_session
from fasterseg.errors import ExportError
from fasterseg.infer.fold import fold_batchnorm
from fasterseg.modelfile import load_model
from tests.infer.conftest import tiny_model


def resize_modes(path) -> set[tuple[str, str]]:
    graph = onnx.load(str(path)).graph
    modes = set()
    for node in graph.node:
        if node.op_type == "Resize":
            attrs = {a.name: a.s.decode() for a in node.attribute if a.type == onnx.AttributeProto.STRING}
            modes.add((attrs["mode"], attrs["coordinate_transformation_mode"]))
    return modes


def test_official_student_onnx_matches_pytorch(student_model, tmp_path):
    path = tmp_path / "student.onnx"
    report = export_onnx(student_model, path, size=(256, 512), output="logits")
    model = onnx.load(str(path))
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17
    assert resize_modes(path) == {("linear", "align_corners")}
    # Our own comparison, independent of the one export_onnx ran.
    x = torch.randn(1, 3, 256, 512, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = student_model(x).numpy()
    got = ort_session(path).run(None, {"image": x.numpy()})[0]
    assert got.shape == (1, 19, 256, 512)
    assert np.abs(got - expected).max() <= 1e-3
    assert report.max_abs_diff <= 1e-3


def test_dynamic_export_with_fused_argmax_at_sizes_not_multiple_of_32(tmp_path):
    model = tiny_model()
    path = tmp_path / "tiny_labels.onnx"
    export_onnx(fold_batchnorm(model), path, size=(64, 96), dynamic=True, output="labels", check=False)
    session = ort_session(path)
    for shape in [(1, 3, 64, 96), (2, 3, 50, 77), (1, 3, 130, 40)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            logits = model(x)
        got = session.run(None, {"image": x.numpy()})[0]
        assert got.dtype == np.int64 and got.shape == (shape[0], *shape[2:])
        top2 = logits.topk(2, dim=1).values
        decided = (top2[:, 0] - top2[:, 1] >= 1e-3).numpy()
        assert (got == logits.argmax(1).numpy())[decided].all()


def test_export_refuses_old_opsets(tmp_path):
    with pytest.raises(ExportError, match="opset"):
        export_onnx(tiny_model(), tmp_path / "x.onnx", size=(64, 64), opset=13)


def test_export_command(cityscapes_tiny_model, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", cityscapes_tiny_model, "--format", "onnx", "--out", str(out),
                 "--size", "64x128", "--fold-bn"]) == 0
    assert "max |onnx - torch|" in capsys.readouterr().out
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        expected = load_model(cityscapes_tiny_model)(x).numpy()
    got = ort_session(out).run(None, {"image": x.numpy()})[0]
    assert np.abs(got - expected).max() <= 1e-3
    assert not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"
    # What a consumer needs besides the graph travels in it (ONNX metadata_props).
    import json

    meta = load_model(cityscapes_tiny_model).meta
    props = ort_session(out).get_modelmeta().custom_metadata_map
    assert json.loads(props["fasterseg.mean"]) == list(meta.mean) and json.loads(props["fasterseg.std"]) == list(meta.std)
    assert json.loads(props["fasterseg.class_names"]) == list(meta.class_names)
    assert props["fasterseg.output"].startswith("class scores") and "normalised" in props["fasterseg.input"]
