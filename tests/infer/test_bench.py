"""``fasterseg bench``: timing rules and the command's table/JSON."""

import json

import pytest
import torch

from fasterseg.cli import main
from fasterseg.infer.bench import Timing
from fasterseg.utils.timing import repeat_ms, wall_timer
from tests.nets.test_network import tiny_genotype


def test_timing_median_and_p90_by_hand():
    t = Timing.of([0.005, 0.001, 0.003, 0.002, 0.004, 0.006, 0.007, 0.008, 0.009, 0.010, 0.100])
    assert t.median_ms == pytest.approx(6.0)
    assert t.p90_ms == pytest.approx(10.0)  # 10th of 11 sorted values
    assert t.repeats == 11


def test_the_timing_harness_warms_up_and_synchronises_around_every_timed_call():
    calls, syncs = [], []
    samples = repeat_ms(lambda: calls.append(1), wall_timer(lambda: syncs.append(1)), warmup=2, repeats=5)
    assert len(calls) == 7 and len(syncs) == 10  # before and after each of the 5 timed calls
    assert len(samples) == 5 and min(samples) >= 0
    # more repeats until min_time_s is measured, at most ten times the repeats
    slow = repeat_ms(lambda: None, lambda run: 1.0, warmup=0, repeats=3, min_time_s=1.0)
    assert len(slow) == 30


def test_bench_a_genotype_with_random_weights(tmp_path, capsys):
    genotype = tmp_path / "tiny.json"
    tiny_genotype().save(genotype)
    rc = main(["bench", "--model", str(genotype), "--size", "64x96", "--backend", "eager", "optimized", "tensorrt",
               "--no-compile", "--warmup", "1", "--repeats", "3", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["results"]
    assert [r["backend"] for r in rows] == ["eager", "optimized", "tensorrt"]
    for row in rows[:2]:
        for key in ("end_to_end", "model_only"):
            assert 0 < row[key]["median_ms"] <= row[key]["p90_ms"]
        assert row["fps"] == pytest.approx(1000 / row["end_to_end"]["median_ms"])
    assert rows[2]["end_to_end"] is None and "CUDA" in rows[2]["error"]
    assert report["environment"]["torch"]


def test_bench_table_has_one_line_per_path(tmp_path, capsys):
    genotype = tmp_path / "tiny.json"
    tiny_genotype().save(genotype)
    assert main(["bench", "--model", str(genotype), "--size", "64x64", "--backend", "eager", "optimized",
                 "--no-compile", "--repeats", "2", "--warmup", "0", "--no-model-only"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(lines) == 3 and lines[1].startswith("| eager+fp32") and "folded-bn" in lines[2]


@pytest.mark.parametrize("command", ["predict", "export", "bench"])
def test_inference_commands_have_help_and_reject_bad_usage(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0 and "usage" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main([command])  # --model (and more) missing
    assert info.value.code == 2


def test_bench_runs_each_backend_in_the_asked_precisions_it_supports():
    """eager stays the fp32 reference; the others take the asked precisions they can run, else fp32."""
    import argparse

    from fasterseg.commands.bench import option_list

    args = argparse.Namespace(backend=["eager", "onnxruntime", "openvino", "optimized"], precision=["bf16", "int8"],
                              device="cpu", compile=False, cuda_graphs=False, threads=None)
    calibration = object()
    got = [(o.backend, o.precision, o.calibration is calibration) for o in option_list(args, calibration)]
    assert got == [("eager", "fp32", False), ("onnxruntime", "int8", True), ("openvino", "bf16", False),
                   ("openvino", "int8", True), ("optimized", "bf16", False)]


def test_bench_models_times_every_network_in_the_same_rounds():
    """Two networks, two paths each: after setup, each round calls every runner once, in turn."""
    from fasterseg.infer.bench import bench_models
    from fasterseg.infer.runners import RunnerOptions
    from tests.infer.conftest import tiny_model

    calls = []
    models = {"a": tiny_model(num_classes=5, seed=0), "b": tiny_model(ends=(2,), num_classes=5, seed=1)}
    for name, model in models.items():
        model.register_forward_hook(lambda module, inputs, output, name=name: calls.append(name))
    paths = [RunnerOptions("eager", compile=False), RunnerOptions("eager", compile=False)]
    rows = bench_models(models, paths, (32, 48), warmup=1, repeats=3, model_only=False)
    assert list(rows) == ["a", "b"]
    for name in models:
        assert [r.agreement for r in rows[name]] == [1.0, 1.0]  # each against its own first path
        assert all(r.end_to_end.repeats == 3 for r in rows[name])
    setup = 4  # one labels() call per runner while building it
    assert calls[:setup] == ["a", "a", "b", "b"]
    assert calls[setup:] == ["a", "a", "b", "b"] * 4  # 1 warm-up + 3 timed rounds, each runner once


def test_bench_several_models_side_by_side(tmp_path, capsys):
    """Two --model arguments: each network's rows, named, in the JSON and in one table whose speed-up
    column is relative to the first network's first path."""
    small, large = tmp_path / "small.json", tmp_path / "large.json"
    tiny_genotype(ends=(2,)).save(small)
    tiny_genotype(ends=(2, 1, 0)).save(large)
    argv = ["bench", "--model", str(small), "--model", str(large), "--size", "64x64", "--backend", "eager",
            "--repeats", "2", "--warmup", "0", "--no-model-only"]
    assert main(argv + ["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [(r["model"], r["backend"]) for r in rows] == [(str(small), "eager"), (str(large), "eager")]
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| model | path |") and len(lines) == 3  # the header, one row per network
    cells = [line.split(" | ") for line in lines[1:]]
    assert [c[0].lstrip("| ") for c in cells] == [str(small), str(large)]
    assert cells[0][11] == "1.00x"  # the first network's first path is the reference
    small_ms, large_ms = float(cells[0][5]), float(cells[1][5])  # rounded to 0.1 ms in the table
    assert float(cells[1][11].rstrip("x")) == pytest.approx(small_ms / large_ms, rel=0.1)


def test_bench_int8_refuses_models_of_different_class_counts(tmp_path, capsys):
    five, seven = tmp_path / "five.json", tmp_path / "seven.json"
    tiny_genotype(num_classes=5).save(five)
    tiny_genotype(num_classes=7).save(seven)
    rc = main(["bench", "--model", str(five), "--model", str(seven), "--size", "32x32", "--backend", "onnxruntime",
               "--precision", "int8", "--calib", "synth:unused"])
    assert rc != 0
    assert "[5, 7]" in capsys.readouterr().err


def test_bench_models_exports_each_network_its_own_graph(tmp_path):
    """The exported paths must run the network they time: two networks of the same shape but other
    weights, each on ONNX Runtime, agree with their own eager labels, also with a shared --onnx-dir."""
    from fasterseg.infer.bench import bench_models
    from fasterseg.infer.runners import RunnerOptions
    from tests.infer.conftest import tiny_model

    models = {"a": tiny_model(seed=0), "b": tiny_model(seed=1)}
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (models["a"](x).argmax(1) != models["b"](x).argmax(1)).any()  # the mix-up would show
    for onnx_dir in (None, tmp_path / "graphs"):
        paths = [RunnerOptions("eager", compile=False), RunnerOptions("onnxruntime", onnx_dir=onnx_dir)]
        rows = bench_models(models, paths, (64, 96), warmup=0, repeats=1, model_only=False)
        for name in models:
            assert rows[name][1].error is None and rows[name][1].agreement > 0.999, (name, onnx_dir)
        assert paths[1].onnx_dir == onnx_dir  # the caller's options are left as they were
