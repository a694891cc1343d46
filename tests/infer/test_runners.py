"""Every deploy path gives the plain model's labels (the tests run what runs on this machine)."""

import pytest
import torch

from fasterseg.infer.heads import NetworkOnly, Segmenter
from fasterseg.errors import BackendUnavailable
from fasterseg.infer.runners import RunnerOptions, build_runner
from tests.infer.conftest import assert_same_labels, reference_labels, tiny_model

CPU_PATHS = [
    RunnerOptions("eager"),
    RunnerOptions("optimized", compile=False),
    RunnerOptions("optimized", compile=False, channels_last=False),
    RunnerOptions("onnxruntime"),
    RunnerOptions("openvino"),
]


def test_segmenter_is_forward_then_argmax_at_any_size():
    model = tiny_model()
    x = torch.randn(2, 3, 45, 83)
    with torch.no_grad():
        torch.testing.assert_close(Segmenter(model, argmax=False)(x), model(x), atol=0, rtol=0)
        assert NetworkOnly(model)(x).shape == (2, 5, 8, 12)  # padded to 64x96, then 1/8


@pytest.mark.parametrize("options", CPU_PATHS, ids=lambda o: o.describe())
def test_cpu_paths_give_the_plain_model_labels(options, tmp_path):
    model = tiny_model()
    options.onnx_dir = tmp_path
    runner = build_runner(model, options)
    for size in [(64, 96), (50, 77)]:
        x = torch.randn(2, 3, *size)
        labels, margin = reference_labels(model, x)
        got = runner.labels(x)
        assert got.dtype == torch.int64
        assert_same_labels(got, labels, margin)
        if options.backend in ("onnxruntime", "openvino"):
            continue  # their logits8 graph is a second export; covered in test_export
        with torch.no_grad():
            torch.testing.assert_close(runner.logits8(x).float(), NetworkOnly(model)(x), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compiled_path_gives_the_plain_model_labels():
    model = tiny_model()
    runner = build_runner(model, RunnerOptions("optimized", compile=True))
    x = torch.randn(1, 3, 64, 96)
    labels, margin = reference_labels(model, x)
    assert_same_labels(runner.labels(x), labels, margin)


@pytest.mark.parametrize("backend", ["optimized", "openvino"])
def test_bf16_on_cpu_runs_and_mostly_agrees(backend, tmp_path):
    model = tiny_model()
    x = torch.randn(1, 3, 64, 96)
    labels, _ = reference_labels(model, x)
    try:
        runner = build_runner(model, RunnerOptions(backend, precision="bf16", compile=False, onnx_dir=tmp_path))
    except BackendUnavailable as exc:
        pytest.skip(str(exc))  # no bf16 on this CPU (OpenVINO asks the CPU)
    got = runner.labels(x)
    assert (got == labels).float().mean() > 0.9  # bf16 is lossy: not a same-labels path


def test_optimized_bf16_is_refused_on_a_cpu_without_bf16_units(monkeypatch):
    """Emulated bf16 is slower than fp32: a benchmark would time it as if it were the real path."""
    from fasterseg.utils import device as device_caps

    monkeypatch.setattr(device_caps, "bf16_supported", lambda device: False)
    with pytest.raises(BackendUnavailable, match="no native bf16"):
        build_runner(tiny_model(), RunnerOptions("optimized", precision="bf16", compile=False))
    build_runner(tiny_model(), RunnerOptions("optimized", precision="fp32", compile=False))  # fp32 still runs


@pytest.mark.parametrize("options,match", [
    (RunnerOptions("optimized", precision="fp16"), "fp16"),
    (RunnerOptions("eager", precision="bf16"), r"eager: runs fp32, not bf16 \(bf16 runs on optimized, openvino\)"),
    (RunnerOptions("tensorrt"), "CUDA"),
    (RunnerOptions("openvino", precision="fp16"), "runs fp32, bf16, int8, not fp16"),
    (RunnerOptions("optimized", precision="int8"), "not int8"),
    (RunnerOptions("eager", precision="int8"), "not int8"),
    (RunnerOptions("onnxruntime", precision="int8"), "calibration images"),
])
def test_paths_that_cannot_run_here_say_why(options, match):
    with pytest.raises(BackendUnavailable, match=match):
        build_runner(tiny_model(), options)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("options", [
    RunnerOptions("optimized", device="cuda", compile=False, cuda_graphs=True),
    RunnerOptions("optimized", device="cuda", compile=False, precision="fp16"),
    RunnerOptions("optimized", device="cuda", compile=False, precision="bf16"),
], ids=lambda o: o.describe())
def test_gpu_paths_give_the_plain_model_labels(options):
    model = tiny_model()
    x = torch.randn(2, 3, 64, 96)
    labels, margin = reference_labels(model, x)
    got = build_runner(model, options).labels(x.cuda()).cpu()
    tie = 1e-3 if options.precision == "fp32" else 0.1
    assert_same_labels(got, labels, margin, tie=tie)


def test_official_student_folded_channels_last_gives_its_labels(student_model):
    x = torch.randn(1, 3, 256, 512, generator=torch.Generator().manual_seed(0))
    labels, margin = reference_labels(student_model, x)
    got = build_runner(student_model, RunnerOptions("optimized", compile=False)).labels(x)
    assert_same_labels(got, labels, margin, tie=1e-4)
