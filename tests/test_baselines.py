"""The hand-designed baselines in benchmarks/baselines: the outputs fasterseg's loss and evaluator
take, at sizes that are not multiples of their strides, and the parameter counts their papers give."""

import importlib.util
from pathlib import Path

import pytest
import torch

from fasterseg.losses import OhemCrossEntropy, segmentation_loss

SPEC = importlib.util.spec_from_file_location(
    "baseline_networks", Path(__file__).resolve().parents[1] / "benchmarks" / "baselines" / "networks.py")
networks = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(networks)


@pytest.mark.parametrize("name", sorted(networks.NETWORKS))
def test_baseline_trains_and_predicts_at_odd_sizes(name):
    torch.manual_seed(0)
    model = networks.build(name, num_classes=11)
    x = torch.randn(2, 3, 72, 100)
    labels = torch.randint(0, 11, (2, 72, 100))
    main, aux, none = model.train()(x)
    assert main.shape == (2, 11, 72, 100) and aux.shape == main.shape and none is None
    assert model.eval().logits8(x).shape == (2, 11, 9, 13)
    model.train()
    loss = segmentation_loss((main, aux, none), labels, OhemCrossEntropy(0.7, ignore_index=255))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 11, 72, 100)  # full-resolution scores, as FasterSegNet


@pytest.mark.parametrize("name,millions", [("ddrnet23slim", 5.7), ("bisenetv2", 3.4)])
def test_parameter_counts_are_near_the_papers(name, millions):
    """DDRNet-23-slim: 5.7 M (Cityscapes, 19 classes); BiSeNetV2: about 3.4 M without its
    training-only boosters (counts vary with the head; within 20%)."""
    model = networks.build(name, num_classes=19)
    boosters = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("aux.", "aux_head.")))
    count = (sum(p.numel() for p in model.parameters()) - boosters) / 1e6
    assert abs(count - millions) / millions < 0.2, count


@pytest.mark.parametrize("name", sorted(networks.NETWORKS))
def test_baseline_runs_on_fasterseg_deploy_paths(name, tmp_path):
    """logits8 lets the package's runners (and so its benchmarks) time a baseline like a FasterSeg network."""
    from fasterseg.infer.runners import RunnerOptions, build_runner

    torch.manual_seed(0)
    model = networks.build(name, num_classes=11).eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        want = model(x).argmax(1)
    got = build_runner(model, RunnerOptions("onnxruntime", onnx_dir=tmp_path)).labels(x)
    assert got.shape == want.shape
    assert (got == want).float().mean() > 0.9  # the deploy graph resizes with corners aligned; the network without


def test_compare_scores_and_times_every_model_side_by_side(synth_root, tmp_path, monkeypatch):
    """compare.py's mIoU is `fasterseg eval`'s on the same split; every model gets a time on every path."""
    import json
    import sys

    from fasterseg.cli import main as fasterseg_main
    from tests.infer.conftest import tiny_model_file

    spec = importlib.util.spec_from_file_location(
        "baseline_compare", Path(__file__).resolve().parents[1] / "benchmarks" / "baselines" / "compare.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    a = tiny_model_file(tmp_path / "a.safetensors")
    b = tiny_model_file(tmp_path / "b.safetensors", seed_note="second")  # same weights, recorded differently
    data = f"synth:{synth_root}"
    monkeypatch.setattr(sys, "argv", ["compare.py", "--model", f"a={a}", "--model", f"b={b}", "--data", data,
                                      "--split", "val", "--size", "64x96", "--backend", "eager:fp32",
                                      "onnxruntime:fp32", "--warmup", "1", "--repeats", "2", "--out", str(tmp_path / "cmp")])
    compare.main()
    record = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["name"] for r in record["results"]] == ["a", "b"]
    assert fasterseg_main(["eval", "--model", a, "--data", data, "--split", "val", "--json", str(tmp_path / "e.json")]) == 0
    want = json.loads((tmp_path / "e.json").read_text())["average"]["IoU Classes"]
    for r in record["results"]:
        assert r["mIoU"] == pytest.approx(want, abs=1e-6)
        assert len(r["timing"]) == 2 and all(t["end_to_end_ms"] > 0 and t["model_only_ms"] > 0 for t in r["timing"].values())
    assert len([line for line in (tmp_path / "cmp" / "compare.md").read_text().splitlines() if line.startswith("| a |")
                or line.startswith("| b |")]) == 2
    assert (tmp_path / "cmp" / "pareto.png").stat().st_size > 0
    (tmp_path / "cmp" / "pareto.png").unlink()  # --replot redraws it from compare.json alone
    monkeypatch.setattr(sys, "argv", ["compare.py", "--replot", str(tmp_path / "cmp" / "compare.json")])
    compare.main()
    assert (tmp_path / "cmp" / "pareto.png").stat().st_size > 0


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(
        f"baseline_{name}", Path(__file__).resolve().parents[1] / "benchmarks" / "baselines" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_halved_weights_load_in_compare_and_predict_as_the_run(tmp_path):
    """A run's weights halved to fp16 (what gets committed) load through compare.py's NETWORK:FILE
    spec and give the run's own predictions; the file is half the size and keeps its metadata."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    halve, compare = _load_script("half_weights").halve, _load_script("compare")
    torch.manual_seed(0)
    model = networks.build("bisenetv2", num_classes=11).eval()
    run = tmp_path / "run"
    run.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(run / "model.safetensors"),
              metadata={"network": "bisenetv2", "num_classes": "11"})
    half = tmp_path / "committed" / "bisenetv2_half.safetensors"
    halve(run, half)
    assert half.stat().st_size < 0.55 * (run / "model.safetensors").stat().st_size
    with safe_open(str(half), "pt") as f:
        assert f.metadata()["num_classes"] == "11"
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.float16, torch.int64}  # BatchNorm's batch counters stay integers
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = compare.load(f"bisenetv2:{run}")(x)
        got = compare.load(f"bisenetv2:{half}")(x)
    assert got.dtype == torch.float32
    assert (got - want).abs().max() <= 1e-2 * want.abs().max()
    assert (got.argmax(1) == want.argmax(1)).float().mean() > 0.98
    with pytest.raises(ValueError, match="holds bisenetv2 weights, not ddrnet23slim's"):
        compare.load(f"ddrnet23slim:{half}")
    with pytest.raises(FileNotFoundError, match="has the run finished"):
        halve(tmp_path / "unfinished", tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
