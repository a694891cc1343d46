"""`fasterseg lut` end to end on tiny sizes: build (resumable), show, import-official, validate."""

from __future__ import annotations

import json

import pytest

from fasterseg.cli import main
from fasterseg.latency.lut import LatencyTable, OpSpec
from fasterseg.latency.measure import OnnxRuntimeTimer, OpenVinoTimer, TimingSettings, TorchTimer, build_module
from fasterseg.latency.specs import space_specs
from fasterseg.space.config import SupernetConfig

TINY = ["--size", "64x128", "--set", "layers=5", "--set", "base_channels=3", "--set", "num_classes=3",
        "--warmup", "1", "--repeats", "2", "--no-progress"]


def test_build_is_resumable_and_refuses_a_different_setting(tmp_path, capsys):
    out = tmp_path / "cpu.json"
    # an "interrupted" build: only the skips got measured
    assert main(["lut", "build", "--only", "skip", "--out", str(out), *TINY]) == 0
    partial = LatencyTable.load(out)
    assert {k.split("_H")[0] for k in partial.entries} == {"skip"}
    # the same command without --only resumes: the skips are kept, not measured again
    assert main(["lut", "build", "--out", str(out), *TINY]) == 0
    full = LatencyTable.load(out)
    space = SupernetConfig(layers=5, base_channels=3, num_classes=3)
    assert set(full.entries) == {s.key for s in space_specs(space, (64, 128))}
    assert all(full.entries[k] == v for k, v in partial.entries.items())
    assert full.meta.backend == "eager" and full.meta.threads == 1 and full.meta.size == (64, 128)
    assert full.meta.versions["torch"]
    # two partial builds merge into the same table
    other = tmp_path / "convs.json"
    assert main(["lut", "build", "--only", "conv", "--out", str(other), *TINY]) == 0
    skips = partial.save(tmp_path / "skips.json")
    merged = tmp_path / "merged.json"
    assert main(["lut", "merge", str(skips), str(other), "--out", str(merged)]) == 0
    assert set(LatencyTable.load(merged).entries) == set(partial.entries) | set(LatencyTable.load(other).entries)
    rc = main(["lut", "build", "--out", str(out), *TINY, "--size", "64x96"])  # another size: another table
    assert rc == 1
    assert "exists with setting" in capsys.readouterr().err


def test_bf16_table_is_refused_on_a_cpu_without_bf16_units(tmp_path, capsys, monkeypatch):
    """Emulated bf16 runs slower than fp32: its table would steer a search towards the wrong operators."""
    from fasterseg.utils import device as device_caps

    monkeypatch.setattr(device_caps, "bf16_supported", lambda device: False)
    out = tmp_path / "bf16.json"
    assert main(["lut", "build", "--precision", "bf16", "--out", str(out), *TINY]) == 1
    assert "no native bf16" in capsys.readouterr().err
    assert not out.exists()


def test_show_and_import_official(tmp_path, capsys, official_dir):
    out = tmp_path / "official.json"
    assert main(["lut", "import-official", "--source", str(official_dir / "official_lut_1080ti_trt5.json"),
                 "--out", str(out)]) == 0
    assert "667 entries" in capsys.readouterr().out
    genotype = tmp_path / "student.json"
    from fasterseg.nets.official import load_official_arch, official_genotype

    official_genotype(load_official_arch(official_dir / "arch_1.pt"), "student").save(genotype)
    assert main(["lut", "show", str(out), "--genotype", str(genotype), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entries"] == 667
    assert report["meta"]["backend"] == "tensorrt"
    assert report["network"]["fps"] == pytest.approx(175.4, abs=0.1)
    assert main(["lut", "show", "official-1080ti-trt5"]) == 0
    assert "1080 Ti" in capsys.readouterr().out


def test_validate_reports_and_plots(tmp_path, capsys):
    table = tmp_path / "cpu.json"
    assert main(["lut", "build", "--out", str(table), "--clock", "cpu", *TINY]) == 0
    out_dir = tmp_path / "val"
    assert main(["lut", "validate", "--lut", str(table), "--samples", "4", "--out-dir", str(out_dir),
                 "--set", "layers=5", "--set", "base_channels=3", "--set", "num_classes=3",
                 "--warmup", "1", "--repeats", "2", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Spearman" in text and "MAPE" in text
    result = json.loads((out_dir / "validate.json").read_text())
    assert len(result["measured_ms"]) == 4 and all(v > 0 for v in result["measured_ms"])
    assert (out_dir / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_onnxruntime_openvino_and_torch_time_the_same_op():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    spec = OpSpec("conv_2x", 32, 64, 16, 16, 1)
    settings = TimingSettings(warmup=1, repeats=3)
    ort_ms = OnnxRuntimeTimer(settings=settings).time_spec(spec)
    ov_ms = OpenVinoTimer(settings=settings).time_spec(spec)
    torch_ms = TorchTimer(settings=settings).time_spec(spec)
    assert ort_ms > 0 and ov_ms > 0 and torch_ms > 0
    cl = TorchTimer(settings=settings, memory_format="channels_last")
    assert cl.time_spec(spec) > 0
    assert cl.meta((64, 128)).memory_format == "channels_last"


def test_measured_modules_compute_what_the_network_computes():
    """The head piece includes the x8 logits resize; the arm piece its x2 resize."""
    import torch

    head = build_module(OpSpec("head", 8, 16, 12, 5, 1))
    assert head(torch.randn(1, 12, 8, 16)).shape == (1, 5, 64, 128)
    arm = build_module(OpSpec("arm", 4, 8, 12, 6, 1))
    assert arm(torch.randn(1, 12, 4, 8)).shape == (1, 6, 8, 16)
    proj = build_module(OpSpec("skip", 8, 8, 4, 6, 1))  # the supernet's 1x1 projection
    assert proj(torch.randn(1, 4, 8, 8)).shape == (1, 6, 8, 8)


@pytest.mark.slow
def test_cpu_table_predicts_whole_networks(tmp_path):
    """A real accuracy check (slow): a CPU table at 256x512 ranks random networks correctly."""
    from fasterseg.latency.measure import make_timer
    from fasterseg.latency.validate import validate_table

    table_path = tmp_path / "cpu.json"
    assert main(["lut", "build", "--size", "256x512", "--clock", "cpu", "--out", str(table_path), "--no-progress"]) == 0
    table = LatencyTable.load(table_path)
    backend = make_timer(settings=TimingSettings(warmup=2, repeats=7, clock="cpu"))
    report = validate_table(table, backend, samples=10, seed=1, out_dir=tmp_path / "val", progress=False)
    assert report.spearman >= 0.8
    assert report.mape_calibrated <= 20.0


def test_an_openvino_table_is_built_and_validated_at_a_small_size(tmp_path, capsys):
    pytest.importorskip("openvino")
    table = tmp_path / "ov.json"
    assert main(["lut", "build", "--backend", "openvino", "--only", "skip", "--out", str(table), "--clock", "cpu", *TINY]) == 0
    assert LatencyTable.load(table).meta.backend == "openvino"
    out_dir = tmp_path / "val"
    assert main(["lut", "validate", "--lut", str(table), "--samples", "3", "--out-dir", str(out_dir), "--measure-missing",
                 "--set", "layers=5", "--set", "base_channels=3", "--set", "num_classes=3",
                 "--warmup", "1", "--repeats", "2", "--no-progress"]) == 0
    result = json.loads((out_dir / "validate.json").read_text())
    assert len(result["measured_ms"]) == 3 and all(v > 0 for v in result["measured_ms"])


def test_lut_validate_writes_under_runs_by_default():
    """Not a lut_validate/ folder in whatever directory the user stands in: under runs/, which
    git ignores, as every other command's output."""
    from pathlib import Path

    from fasterseg.cli import build_parser

    args = build_parser().parse_args(["lut", "validate", "--lut", "t.json"])
    assert Path(args.out_dir).parts[0] == "runs"
    gitignore = Path(__file__).resolve().parents[2] / ".gitignore"
    assert "runs/" in gitignore.read_text().splitlines()
