"""Shared fixtures. Reference material is read in place from ../shared (or $FASTERSEG_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("FASTERSEG_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    root = shared_dir()
    if not (root / "reference").is_dir():
        pytest.skip(f"reference material not found at {root} (set FASTERSEG_SHARED to its location)")
    return root


@pytest.fixture(scope="session")
def official_dir(shared: Path) -> Path:
    return shared / "reference" / "official"


@pytest.fixture(scope="session")
def equivalence_dir(shared: Path) -> Path:
    return shared / "reference" / "equivalence"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A small synthetic set in the Cityscapes layout (4 train, 4 val scenes of 128x256)."""
    from fasterseg.data.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(out=root, train=4, val=4, size=(128, 256), seed=3), progress=False)
    return root


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny FasterSeg model file with 11 classes (untrained), for commands fed odd input."""
    import torch

    from fasterseg.modelfile import ModelMeta, save_model
    from fasterseg.nets.network import FasterSegNet, init_weights
    from tests.helpers import tiny_genotype

    torch.manual_seed(0)
    net = FasterSegNet(tiny_genotype(), aux_heads=False)
    init_weights(net)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(path, net, ModelMeta(genotype=tiny_genotype(), class_names=tuple(f"c{i}" for i in range(11))))
    return path
