"""``fasterseg demo``: the whole method on the built-in synthetic set, on a CPU, resumably.

Each stage runs the very command a user would type (through :func:`fasterseg.cli.main`), so the
demo is also a living example of the pipeline: synthetic data -> a CPU latency table for a tiny
search space -> pretraining and co-search -> teacher -> student distilled from the teacher ->
the Cityscapes-style evaluation -> benchmark -> ONNX export -> overlays -> ``report.md``.
A finished stage leaves ``stages/<name>.done``; running the demo again skips it, and an
interrupted search or training resumes from its last epoch.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from fasterseg.errors import DemoError
from fasterseg.utils.io import atomic_write_text


@dataclass
class DemoConfig:
    """Sizes of the demo (the defaults take under ten minutes on two CPU cores)."""

    out: str = "runs/demo"  # where everything is written
    size: tuple[int, int] = (128, 256)  # synthetic image size (height, width)
    train_images: int = 80  # synthetic training scenes
    val_images: int = 20  # synthetic validation scenes
    seed: int = 0  # data, search and training seed
    layers: int = 6  # supernet layers
    pretrain_epochs: int = 3  # supernet pretraining epochs
    search_epochs: int = 5  # co-search epochs
    search_iters: int = 15  # iterations per search epoch (each phase)
    teacher_epochs: int = 20  # teacher training epochs
    student_epochs: int = 20  # student training epochs
    train_iters: int = 15  # iterations per training epoch
    batch_size: int = 8  # training batch size
    bench_repeats: int = 10  # timed runs per deploy path


def tiny_demo() -> DemoConfig:
    """A smaller setting for the end-to-end test (a couple of minutes)."""
    return DemoConfig(size=(64, 128), train_images=12, val_images=4, pretrain_epochs=1, search_epochs=1,
                      search_iters=2, teacher_epochs=1, student_epochs=1, train_iters=2, batch_size=4, bench_repeats=2)


def _supernet(cfg: DemoConfig) -> dict:
    """The search space, written once into the search config, which `lut build --space` also reads."""
    return {"layers": cfg.layers, "base_channels": 4, "width_choices": [0.5, 1.0], "num_classes": 19,
            "archs": [{"name": "teacher", "stem_width": 1.0, "head_width": 1.0, "search_width": False, "ignore_skip": True},
                      {"name": "student", "stem_width": 0.5, "head_width": 0.5, "search_width": True, "ignore_skip": False}]}


def _search_config(cfg: DemoConfig) -> dict:
    phase = {"iters_per_epoch": cfg.search_iters, "batch_size": 4 if cfg.train_images >= 16 else 2,
             "crop": [max(64, cfg.size[0] // 2), max(64, cfg.size[1] // 2)], "downsample": 1, "seed": cfg.seed}
    return {
        "latency_size": list(cfg.size), "device": "cpu",
        "supernet": _supernet(cfg),
        "pretrain": {**phase, "epochs": cfg.pretrain_epochs},
        # A wide window: on an unknown CPU the demo only shows the mechanism, not a target speed.
        "search": {**phase, "epochs": cfg.search_epochs, "val_limit": cfg.val_images,
                   "fps_min": {"student": 1.0}, "fps_max": {"student": 1.0e6}},
    }


def _train_config(cfg: DemoConfig, epochs: int) -> dict:
    return {"epochs": epochs, "iters_per_epoch": cfg.train_iters, "batch_size": cfg.batch_size,
            "val_every": max(1, epochs // 4),  # a few points for the mIoU curve; validation is cheap here
            "seed": cfg.seed, "device": "cpu",
            "data": {"crop_size": list(cfg.size), "scales": [0.75, 1.0, 1.25], "workers": 0},
            "optim": {"lr": 0.05, "schedule": "poly"}}


@dataclass
class Stage:
    name: str
    title: str
    argv: Callable[[], list[str]]
    resumable_run: Path | None = None  # a search/train run directory that --resume can continue
    capture: Path | None = None  # write the command's stdout here


def _size(s: tuple[int, int]) -> str:
    return f"{s[0]}x{s[1]}"


def stages(cfg: DemoConfig, out: Path) -> list[Stage]:
    data = f"synth:{out / 'data'}"
    student_model = out / "student" / "best.safetensors"
    return [
        Stage("data", "synthetic street scenes", lambda: [
            "data", "synth", "--out", str(out / "data"), "--train", str(cfg.train_images), "--val", str(cfg.val_images),
            "--size", _size(cfg.size), "--seed", str(cfg.seed)]),
        Stage("lut", "CPU latency table of the search space", lambda: [
            "lut", "build", "--device", "cpu", "--backend", "eager", "--size", _size(cfg.size), "--threads", "1",
            "--clock", "cpu", "--space", str(out / "configs" / "search.yaml"), "--out", str(out / "lut.json"),
            "--repeats", "5", "--warmup", "2", "--no-progress"]),
        Stage("search", "supernet pretraining and teacher/student co-search", lambda: [
            "search", "--config", str(out / "configs" / "search.yaml"), "--data", data, "--lut", str(out / "lut.json"),
            "--out-dir", str(out), "--name", "search", "--threads", "1"], resumable_run=out / "search"),
        Stage("teacher", "train the teacher from scratch", lambda: [
            "train", "--genotype", str(out / "search" / "teacher.json"), "--data", data,
            "--config", str(out / "configs" / "teacher.yaml"), "--out-dir", str(out), "--name", "teacher", "--quiet"],
            resumable_run=out / "teacher"),
        Stage("student", "train the student, distilled from the teacher", lambda: [
            "train", "--genotype", str(out / "search" / "student.json"), "--data", data,
            "--teacher", str(out / "teacher" / "best.safetensors"),
            "--config", str(out / "configs" / "student.yaml"), "--out-dir", str(out), "--name", "student", "--quiet"],
            resumable_run=out / "student"),
        Stage("evaluate", "evaluate the student (Cityscapes table)", lambda: [
            "eval", "--model", str(student_model), "--data", data, "--split", "val",
            "--json", str(out / "eval" / "metrics.json"), "--csv", str(out / "eval" / "metrics.csv"),
            "--plots", str(out / "eval")], capture=out / "eval" / "table.txt"),
        Stage("bench", "benchmark the student's deploy paths", lambda: [
            "bench", "--model", str(student_model), "--size", _size(cfg.size), "--backend", "eager", "optimized",
            "onnxruntime", "--no-compile", "--repeats", str(cfg.bench_repeats), "--warmup", "2", "--json"],
            capture=out / "bench.json"),
        Stage("export", "export the student to ONNX", lambda: [
            "export", "--model", str(student_model), "--format", "onnx", "--out", str(out / "student.onnx"),
            "--size", _size(cfg.size)]),
        Stage("predict", "overlays of validation images", lambda: [
            "predict", "--model", str(student_model), "--input", str(out / "data" / "leftImg8bit" / "val"),
            "--out", str(out / "predictions"), "--outputs", "labels,color,overlay"]),
    ]


def _write_configs(cfg: DemoConfig, out: Path) -> None:
    folder = out / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    files = {"search.yaml": _search_config(cfg),
             "teacher.yaml": _train_config(cfg, cfg.teacher_epochs), "student.yaml": _train_config(cfg, cfg.student_epochs)}
    for name, data in files.items():
        atomic_write_text(folder / name, yaml.safe_dump(data, sort_keys=False))
    atomic_write_text(folder / "demo.yaml", yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v
                                                           for k, v in cfg.__dict__.items()}, sort_keys=False))


def run_demo(cfg: DemoConfig, log: Callable[[str], None] = print) -> Path:
    """Run (or continue) every stage, then write ``report.md``; returns its path."""
    import torch

    from fasterseg.cli import main

    # The demo's networks are tiny: on a small CPU one intra-op thread beats several competing ones.
    torch.set_num_threads(1)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    done_dir = out / "stages"
    done_dir.mkdir(exist_ok=True)
    _write_configs(cfg, out)
    timings: dict[str, float] = json.loads((out / "timings.json").read_text()) if (out / "timings.json").exists() else {}
    all_stages = stages(cfg, out)
    for number, stage in enumerate(all_stages, 1):
        marker = done_dir / f"{stage.name}.done"
        header = f"[{number}/{len(all_stages)}] {stage.title}"
        if marker.exists():
            log(f"{header}: done already")
            continue
        argv = stage.argv()
        if stage.resumable_run is not None and (stage.resumable_run / "config.yaml").exists():
            argv = _resume_argv(argv, stage.resumable_run)
        log(f"{header}\n    $ fasterseg {' '.join(argv)}")
        start = time.perf_counter()
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer) if stage.capture else contextlib.nullcontext():
                rc = main(argv)
        except SystemExit as exc:  # argparse: a bug in the demo's own command line
            rc = exc.code if isinstance(exc.code, int) else 2
        if rc != 0:
            raise DemoError(f"stage '{stage.name}' failed (exit status {rc}): fasterseg {' '.join(argv)}")
        if stage.capture:
            atomic_write_text(stage.capture, buffer.getvalue())
        timings[stage.name] = time.perf_counter() - start
        atomic_write_text(out / "timings.json", json.dumps(timings, indent=2) + "\n")
        atomic_write_text(marker, "ok\n")
        log(f"    done in {timings[stage.name]:.0f} s")
    from fasterseg.report import write_report

    report = write_report(out, timings)
    log(f"report: {report}")
    return report


def _resume_argv(argv: list[str], run: Path) -> list[str]:
    """The same command continuing ``run``: --resume RUN instead of the settings it saved."""
    keep, skip = [argv[0]], False
    for i, a in enumerate(argv[1:], 1):
        if skip:
            skip = False
            continue
        if a in ("--config", "--data", "--lut", "--genotype", "--teacher", "--out-dir", "--name"):
            skip = True
            continue
        keep.append(a)
    return keep + ["--resume", str(run)]
