"""One backend registry: a new deploy path is one entry, and the old table name still reads."""

import json

import pytest
import torch

from fasterseg import backends
from fasterseg.backends import BackendEntry
from fasterseg.cli import main
from fasterseg.infer.runners import Runner
from fasterseg.latency.lut import LatencyTable, TableMeta
from tests.infer.conftest import tiny_model_file


def half_scale_runner(model, options, device):
    """A test deploy path: runs the model on a half-size input and upsamples the labels back, so
    its labels differ from eager's in a way the benchmark's agreement column must show."""
    model = model.to(device)

    def labels(x):
        with torch.no_grad():
            small = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
            out = model(small).argmax(1, keepdim=True).float()
            return torch.nn.functional.interpolate(out, size=x.shape[2:], mode="nearest")[:, 0].long()

    def logits8(x):
        with torch.no_grad():
            return model.logits8(x)

    return Runner("halfscale+fp32", device, labels, logits8)


def test_a_new_backend_is_one_registry_entry(tmp_path, capsys, monkeypatch):
    entry = BackendEntry("halfscale", "eager at half resolution (a test backend)", "tests.test_backends:half_scale_runner")
    monkeypatch.setitem(backends.REGISTRY, "halfscale", entry)
    model = tiny_model_file(tmp_path / "m.safetensors")
    assert main(["bench", "--model", model, "--size", "64x96", "--backend", "eager", "halfscale",
                 "--warmup", "0", "--repeats", "2", "--no-model-only", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [r["backend"] for r in rows] == ["eager", "halfscale"]
    assert rows[1]["end_to_end"]["median_ms"] > 0 and rows[1]["agreement"] < 1.0
    # the same entry serves predict
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    from PIL import Image

    Image.new("RGB", (96, 64), (120, 90, 60)).save(image)
    assert main(["predict", "--model", model, "--input", str(image), "--out", str(tmp_path / "out"),
                 "--backend", "halfscale", "--outputs", "labels"]) == 0
    assert (tmp_path / "out" / "labels" / "a.png").is_file()


def test_a_backend_that_cannot_time_operators_is_refused_by_lut_build(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["lut", "build", "--backend", "optimized", "--size", "64x64", "--out", str(tmp_path / "t.json")])
    assert info.value.code == 2 and "invalid choice: 'optimized'" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_tables_written_as_torch_are_the_eager_backend(tmp_path):
    path = LatencyTable(TableMeta(device="cpu: x", backend="torch", size=(64, 64))).save(tmp_path / "old.json")
    assert json.loads(path.read_text())["meta"]["backend"] == "eager"
    raw = json.loads(path.read_text())
    raw["meta"]["backend"] = "torch"  # as tables built before the registry say
    path.write_text(json.dumps(raw))
    table = LatencyTable.load(path)
    assert table.meta.backend == "eager"
    assert table.meta.setting() == TableMeta(device="cpu: x", backend="eager", size=(64, 64)).setting()
