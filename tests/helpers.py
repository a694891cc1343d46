"""Small on-disk datasets and networks for tests (real files, real PNGs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fasterseg.data.camvid import CAMVID_INFO
from fasterseg.genotype import Branch, Genotype


def write_toy_camvid(root: Path, n_train: int = 8, n_val: int = 4, size: tuple[int, int] = (64, 96), seed: int = 0) -> str:
    """A CamVid-layout set of simple scenes: sky over buildings over road, with a car box.

    Colours are noisy but separable, so a few training iterations must already help.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n):
            label = np.zeros((h, w), np.uint8)  # sky
            horizon = int(h * rng.uniform(0.25, 0.4))
            road = int(h * rng.uniform(0.6, 0.75))
            label[horizon:road] = 1  # building
            label[road:] = 3  # road
            ch, cw = int(h * 0.2), int(w * 0.25)
            top = rng.integers(road - ch // 2, h - ch)
            left = rng.integers(0, w - cw)
            label[top: top + ch, left: left + cw] = 8  # car
            palette = np.array(CAMVID_INFO.palette, np.float32)
            image = palette[label] + rng.normal(0, 12, (h, w, 3))
            image = np.clip(image, 0, 255).astype(np.uint8)
            name = f"{split}_{i:03d}.png"
            Image.fromarray(image).save(root / split / name)
            Image.fromarray(label).save(root / f"{split}annot" / name)
            lines.append(f"{split}/{name} {split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return f"camvid:{root}"


def tiny_genotype(num_classes: int = 11) -> Genotype:
    return Genotype(
        branches=(
            Branch(2, ("conv", "conv_2x", "conv_downup", "conv", "conv"), (0, 0, 1, 1, 2), (0.5, 0.5, 0.5, 0.5)),
            Branch(1, ("conv", "conv_2x", "conv", "conv"), (0, 0, 1, 1), (0.5, 0.5, 0.5)),
        ),
        num_classes=num_classes, base_channels=4, stem_width=0.5, head_width=0.5,
    )


def tensorboard_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series TensorBoard reads from ``log_dir``, as (step, value) pairs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def toy_train_config(toy, out, name: str, *overrides: str):
    """A seconds-long Adam run on the toy CamVid set (``toy``: spec, genotype), validated and
    compact-checkpointed every epoch; ``overrides`` are ``key=value`` settings on top."""
    from fasterseg.config import load_config
    from fasterseg.train.config import TrainConfig

    spec, geno = toy
    base = [f"genotype={geno}", f"data.spec={spec}", f"out_dir={out}", f"name={name}", "epochs=3", "iters_per_epoch=5",
            "batch_size=4", "data.crop_size=[64, 64]", "data.workers=0", "val_every=1", "optim.name=adam",
            "optim.lr=0.005", "compact_every=1"]
    return load_config(TrainConfig, None, base + list(overrides))


def assert_cpu_deploy_paths_match_eager(model, x, tmp_path) -> None:
    """Eager forward -> argmax is the reference; the exact label path of the optimised (folded),
    ONNX Runtime and OpenVINO runners (those installed) reproduces it on ``x``."""
    import torch

    from fasterseg.errors import BackendUnavailable
    from fasterseg.infer.runners import RunnerOptions, build_runner

    with torch.no_grad():
        want = model(x).argmax(1)
    for backend in ("optimized", "onnxruntime", "openvino"):
        try:
            runner = build_runner(model, RunnerOptions(backend, compile=False, label_path="exact", onnx_dir=tmp_path / backend))
        except BackendUnavailable:
            continue
        got = runner.labels(x)
        assert got.shape == want.shape, backend
        assert (got.long() == want).float().mean() > 0.999, backend


def load_benchmark_script(name: str):
    """A script of benchmarks/ (``"speed"``, ``"baselines/compare"``) imported as a module (they are scripts,
    not a package), so tests call its functions. It is registered in ``sys.modules`` under its file's stem,
    where a dataclass it defines looks its module up."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(Path(name).name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
