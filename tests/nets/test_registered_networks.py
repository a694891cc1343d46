"""The contract every network the package takes keeps, tested on each registered one and on a
FasterSeg genotype network (as timm tests every registered model): training outputs the loss
takes and a gradient for every parameter, labels on every deploy path as its own forward gives
them, an ONNX graph ONNX Runtime reproduces, BatchNorm folding, the model-file round trip (with
and without the training-only heads); then the papers' parameter counts, a baseline trained by
``fasterseg train --network`` and compare.py on model files and on the old loop's weights."""


import pytest
import torch

from fasterseg.losses import OhemCrossEntropy, segmentation_loss
from fasterseg.nets.registry import REGISTRY, build_network
from tests.helpers import load_benchmark_script

NETWORKS = [*REGISTRY, "fasterseg"]


def _build(name: str, num_classes: int = 11, aux_heads: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "fasterseg":
        from fasterseg.nets.network import FasterSegNet, init_weights
        from tests.helpers import tiny_genotype

        model = FasterSegNet(tiny_genotype(num_classes), aux_heads=aux_heads)
        init_weights(model)
        return model
    return build_network(name, num_classes, aux_heads=aux_heads)


def _settled(model: torch.nn.Module) -> torch.nn.Module:
    """BatchNorm statistics away from their initial (0, 1), so that folding them is tested."""
    with torch.no_grad():
        model.train()
        for _ in range(2):
            model(torch.randn(2, 3, 64, 96))
    return model.eval()


@pytest.mark.parametrize("name", NETWORKS)
def test_trains_and_predicts_at_odd_sizes(name):
    model = _build(name)
    x = torch.randn(2, 3, 72, 100)
    labels = torch.randint(0, 11, (2, 72, 100))
    outputs = model.train()(x)
    assert len(outputs) == 3 and outputs[0].shape == (2, 11, 72, 100)
    assert all(o is None or o.shape == outputs[0].shape for o in outputs[1:]) and any(o is not None for o in outputs[1:])
    loss = segmentation_loss(outputs, labels, OhemCrossEntropy(0.7, ignore_index=255), aux_weight=0.4)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.num_classes == 11 and model.aux_heads
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 11, 72, 100)  # scores at the input size
        assert model.logits8(x).shape == (2, 11, 12, 16)  # 1/8 of the input padded to the stride (96x128)


# DDRNet-23-slim's run (40 s on 2 cores, a third of this file) is kept out of the default suite: its folding is checked
# by test_exports_to_onnx_and_folds_its_batchnorms, and the deploy paths by the other networks.
DEPLOY_CASES = [pytest.param(n, marks=pytest.mark.slow) if n == "ddrnet23_slim" else n for n in NETWORKS]


@pytest.mark.parametrize("name", DEPLOY_CASES)
def test_every_cpu_deploy_path_gives_its_labels(name, tmp_path):
    from tests.helpers import assert_cpu_deploy_paths_match_eager

    assert_cpu_deploy_paths_match_eager(_settled(_build(name)), torch.randn(1, 3, 72, 100), tmp_path)


@pytest.mark.parametrize("name", NETWORKS)
def test_exports_to_onnx_and_folds_its_batchnorms(name, tmp_path):
    pytest.importorskip("onnxruntime")
    from fasterseg.infer.export import export_onnx
    from fasterseg.infer.fold import fold_for_deploy

    model = _settled(_build(name))
    report = export_onnx(model, tmp_path / "m.onnx", size=(64, 96), output="logits", check=True, tolerance=1e-3)
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-3
    folded = fold_for_deploy(model)
    remaining = sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    before = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert remaining < before / 2  # most fold; only pre-activation ones (DDRNet's) stay, applied as affine maps
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("name", NETWORKS)
def test_a_model_file_round_trips_with_and_without_its_training_heads(name, tmp_path):
    from fasterseg.modelfile import ModelMeta, load_model, read_model_meta, save_model

    model = _settled(_build(name))
    meta = ModelMeta(genotype=model.genotype, network=name, class_names=tuple(f"c{i}" for i in range(11)),
                     train_size=(64, 96))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = model(x)
    for include_aux in (True, False):
        path = save_model(tmp_path / f"m{include_aux}.safetensors", model, meta, include_aux=include_aux)
        assert read_model_meta(path).network == name
        loaded = load_model(path)
        assert loaded.aux_heads == include_aux and loaded.num_classes == 11
        with torch.no_grad():
            assert torch.equal(loaded(x), want)
    full, shipped = (tmp_path / "mTrue.safetensors").stat().st_size, (tmp_path / "mFalse.safetensors").stat().st_size
    assert shipped < full


def test_an_unknown_network_is_named_with_the_registered_ones(tmp_path):
    from fasterseg.errors import FasterSegError, ModelFileError
    from fasterseg.modelfile import ModelMeta
    from fasterseg.nets.registry import entry

    with pytest.raises(FasterSegError, match="unknown network 'resnet'.*bisenetv2, ddrnet23_slim"):
        entry("resnet")
    with pytest.raises(ModelFileError, match="unknown network 'resnet'"):
        ModelMeta(genotype=None, network="resnet", class_names=("a",))
    assert entry("ddrnet23slim").name == "ddrnet23_slim"  # the name benchmarks/baselines used


@pytest.mark.parametrize("name,millions", [("ddrnet23_slim", 5.7), ("bisenetv2", 3.4)])
def test_parameter_counts_are_near_the_papers(name, millions):
    """DDRNet-23-slim: 5.7 M (Cityscapes, 19 classes); BiSeNetV2: about 3.4 M without its
    training-only boosters (counts vary with the head; within 20%)."""
    from fasterseg.nets.network import count_parameters

    count = count_parameters(build_network(name, num_classes=19), include_aux=False) / 1e6
    assert abs(count - millions) / millions < 0.2, count


def test_a_baseline_trains_through_fasterseg_train_and_every_command_reads_its_file(tmp_path, capsys):
    from fasterseg.cli import main
    from tests.helpers import write_toy_camvid

    spec = write_toy_camvid(tmp_path / "data")
    args = ["train", "--network", "ddrnet23_slim", "--data", spec, "--out-dir", str(tmp_path), "--name", "ddr", "--quiet",
            "--set", "epochs=2", "--set", "iters_per_epoch=2", "--set", "batch_size=2", "--set", "data.crop_size=[64, 64]",
            "--set", "data.workers=0", "--set", "val_every=1"]
    assert main(args) == 0
    run = tmp_path / "ddr"
    assert not (run / "genotype.json").exists() and "network: ddrnet23_slim" in (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["info", str(run / "best.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "network             ddrnet23_slim" in out and "parameters          5,69" in out
    assert main(["eval", "--model", str(run / "best.safetensors"), "--data", spec, "--split", "val",
                 "--json", str(tmp_path / "e.json")]) == 0
    import json

    assert json.loads((tmp_path / "e.json").read_text())["average"]["IoU Classes"] == pytest.approx(
        json.loads((run / "metrics.json").read_text())["best_val_mIoU"], abs=1e-9)  # the trainer's score, re-scored
    assert main(["train", "--resume", str(run), "--quiet", "--set", "epochs=3"]) == 0  # resumes as any run
    assert main(["info", "--networks"]) == 0
    assert "ddrnet23_slim" in capsys.readouterr().out
    assert main(["train", "--network", "ddrnet23_slim", "--genotype", "g.json", "--data", spec,
                 "--out-dir", str(tmp_path), "--name", "both"]) == 1
    assert "give one of them" in capsys.readouterr().err


@pytest.mark.slow  # a benchmark script end to end (25 s); the networks it reads are covered above
def test_compare_scores_and_times_every_model_side_by_side(synth_root, tmp_path, monkeypatch):
    """compare.py's mIoU is `fasterseg eval`'s on the same split; every model gets a time on every path."""
    import json
    import sys

    from fasterseg.cli import main as fasterseg_main
    from tests.infer.conftest import tiny_model_file

    compare = load_benchmark_script("baselines/compare")
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


def _load_compare():
    return load_benchmark_script("baselines/compare")


def test_the_old_loops_halved_weights_still_load_in_compare(tmp_path):
    """The committed bisenetv2_seq_train.safetensors was written by the baselines' own loop: bare fp16
    weights whose header names the network and class count. compare.py still reads that form."""
    from safetensors.torch import save_file

    compare = _load_compare()
    model = _build("bisenetv2").eval()
    path = tmp_path / "bisenetv2_half.safetensors"
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()},
              str(path), metadata={"network": "bisenetv2", "num_classes": "11"})
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = model(x)
        got = compare.load(f"bisenetv2:{path}")(x)
    assert got.dtype == torch.float32
    assert (got.argmax(1) == want.argmax(1)).float().mean() > 0.98
    with pytest.raises(ValueError, match="holds bisenetv2 weights, not ddrnet23slim's"):
        compare.load(f"ddrnet23slim:{path}")


def test_bench_times_a_registered_network_by_its_name():
    from fasterseg.errors import ModelFileError
    from fasterseg.modelfile import load_network

    net = load_network("ddrnet23_slim:11")
    assert net.num_classes == 11 and not net.aux_heads and not net.training
    assert load_network("ddrnet23slim").num_classes == 19  # the old name; 19 classes as the papers count
    with pytest.raises(ModelFileError, match="positive integer"):
        load_network("bisenetv2:many")


def test_serve_describes_and_runs_a_registered_network(tmp_path):
    """The server's model card names the network (no genotype to describe) and it segments."""
    import numpy as np
    from starlette.testclient import TestClient

    from fasterseg.modelfile import ModelMeta, save_model
    from fasterseg.serve.app import create_app
    from fasterseg.serve.config import ServeConfig
    from tests.serve.conftest import png_bytes, street

    model = _build("ddrnet23_slim", aux_heads=False).eval()
    path = save_model(tmp_path / "ddr.safetensors", model,
                      ModelMeta(genotype=None, network="ddrnet23_slim", class_names=tuple(f"c{i}" for i in range(11)),
                                train_size=(64, 96)))
    app = create_app(ServeConfig(model=str(path), backend="eager", precision="fp32", max_wait_ms=1))
    with TestClient(app) as client:
        card = client.get("/v1/model").json()
        assert card["network"] == "ddrnet23_slim" and card["genotype"] is None
        reply = client.post("/v1/segment?format=json", content=png_bytes(street(64, 96)),
                            headers={"content-type": "image/png"})
        assert reply.status_code == 200 and reply.json()["size"] == [64, 96]
        assert abs(sum(c["fraction"] for c in reply.json()["classes"]) - 1) < 1e-6
    assert np.isfinite(card["latency"]["measured"]["median_ms"])


@pytest.mark.parametrize("name", list(REGISTRY))
def test_fine_tuning_maps_a_registered_networks_class_rows_by_name(name, tmp_path):
    from fasterseg.modelfile import ModelMeta, save_model
    from fasterseg.train.init_from import initialise_from

    source = _build(name, num_classes=3)
    path = save_model(tmp_path / "src.safetensors", source,
                      ModelMeta(genotype=None, network=name, class_names=("road", "car", "sky")))
    target = _build(name, num_classes=2)  # another seed would not matter: every tensor is overwritten or fresh
    record = initialise_from(target, path, ("sky", "tree"))
    assert record["classes_kept"] == ["sky"] and record["classes_new"] == ["tree"]
    classifier = f"{type(source).classifier_prefixes[0]}weight"
    with torch.no_grad():
        assert torch.equal(target.state_dict()[classifier][0], source.state_dict()[classifier][2])  # sky's row
    shared = [k for k in source.state_dict() if not k.startswith(type(source).classifier_prefixes)]
    assert all(torch.equal(target.state_dict()[k], source.state_dict()[k]) for k in shared)
