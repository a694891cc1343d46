"""The decoupled and coupled latency regularisers combine the model's terms as the paper says."""

import pytest
import torch

from fasterseg.search.latency_loss import coupled, decoupled
from fasterseg.space.supernet import ArchSpec, Supernet, SupernetConfig


@pytest.fixture(scope="module")
def net():
    with torch.device("meta"):
        return Supernet(SupernetConfig(
            layers=4, base_channels=2, width_choices=[0.5, 1.0], num_classes=3,
            archs=[ArchSpec("teacher"), ArchSpec("student", 0.5, 0.5, True)],
        ))


def flag_latency(net, arch, alpha, beta, width):
    """A latency whose value encodes which choices were searched: 1 (alpha) + 10 (beta) + 100 (width)."""
    return torch.tensor(1.0 * alpha + 10.0 * beta + 100.0 * width)


def test_decoupled_with_width_search(net):
    # 1/500 * 1 + 497/500 * 10 + 2/500 * 100
    assert decoupled(flag_latency)(net, "student").item() == pytest.approx((1 + 4970 + 200) / 500)


def test_decoupled_without_width_search(net):
    # The teacher does not search widths: 1/500 * 1 + 499/500 * 10
    assert decoupled(flag_latency)(net, "teacher").item() == pytest.approx((1 + 4990) / 500)


def test_coupled_searches_everything_at_once(net):
    assert coupled(flag_latency)(net, "student").item() == 111.0
    assert decoupled(flag_latency, ratios=(0.5, 0.5))(net, "student").item() == pytest.approx(5.5)
