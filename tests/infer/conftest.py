"""Small real models for the inference tests: tiny genotypes with random weights and BN statistics."""

from __future__ import annotations

import pytest
import torch

from fasterseg.data.labels import CITYSCAPES_CLASSES
from fasterseg.modelfile import ModelMeta, load_model, save_model
from fasterseg.nets.network import FasterSegNet, init_weights
from tests.nets.test_network import tiny_genotype


def randomise_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters, so folding has something to get wrong."""
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.2)
            m.weight.data.copy_(torch.randn(n, generator=generator) * 0.5 + 1)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.3)


def tiny_model(ends=(2, 1), num_classes=5, seed=0) -> FasterSegNet:
    torch.manual_seed(seed)
    model = FasterSegNet(tiny_genotype(ends, num_classes=num_classes), aux_heads=False)
    init_weights(model)
    randomise_batchnorm(model, seed)
    return model.eval()


def tiny_model_file(path, num_classes=19, **extra) -> str:
    model = tiny_model(num_classes=num_classes)
    names = CITYSCAPES_CLASSES if num_classes == 19 else tuple(f"class{i}" for i in range(num_classes))
    save_model(path, model, ModelMeta(genotype=model.genotype, class_names=names, extra=extra))
    return str(path)


def reference_labels(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain model's labels and the top-1 minus top-2 score margin per pixel."""
    with torch.no_grad():
        logits = model(x)
    top2 = logits.topk(2, dim=1).values
    return logits.argmax(1), top2[:, 0] - top2[:, 1]


def assert_same_labels(labels: torch.Tensor, reference: torch.Tensor, margin: torch.Tensor, tie: float = 1e-3) -> None:
    """Equal labels wherever the reference decision is not a numerical tie (margin >= ``tie``)."""
    assert labels.shape == reference.shape
    decided = margin >= tie
    assert decided.float().mean() > 0.95, "test input has too many near-ties to be meaningful"
    mismatched = int(((labels.cpu() != reference) & decided).sum())
    assert mismatched == 0, f"{mismatched} decided pixels changed label"


@pytest.fixture(scope="session")
def cityscapes_tiny_model(tmp_path_factory) -> str:
    """A 19-class tiny model file with Cityscapes class names."""
    return tiny_model_file(tmp_path_factory.mktemp("models") / "tiny19.safetensors")


@pytest.fixture(scope="session")
def student_model(official_dir, equivalence_dir, tmp_path_factory):
    """The official student imported with the reference weights (skips if ../shared is absent)."""
    from fasterseg.cli import main

    out = tmp_path_factory.mktemp("student") / "student.safetensors"
    assert main(["import-official", "--arch", str(official_dir / "arch_1.pt"),
                 "--weights", str(equivalence_dir / "student_seed0_weights1.pt"), "--out", str(out)]) == 0
    return load_model(out)
