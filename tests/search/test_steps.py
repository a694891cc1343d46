"""Search steps: which parameters each phase trains, and the latency hook's pull."""

import pytest
import torch

from fasterseg.losses import OhemCrossEntropy
from fasterseg.search.steps import make_optimisers, search_step, supernet_loss
from fasterseg.layers.ops import OP_NAMES
from fasterseg.space.config import ArchSpec, SupernetConfig
from fasterseg.space.supernet import Supernet

# A latency stand-in with real structure: expected MACs-like cost per cell under softmax(alpha).
OP_COST = torch.tensor([0.1, 1.0, 0.25, 2.0, 0.5])  # skip, conv, conv_downup, conv_2x, conv_2x_downup


def expected_cost(net, arch):
    return sum((torch.softmax(a, -1) * OP_COST).sum() for a in net.arch[arch].alphas)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    cfg = SupernetConfig(
        layers=4, base_channels=2, width_choices=[0.5, 1.0], num_classes=3,
        archs=[ArchSpec("teacher", 1.0, 1.0, False, True), ArchSpec("student", 0.5, 0.5, True, False)],
    )
    return Supernet(cfg)


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 64, 64, generator=g), torch.randint(0, 3, (2, 8, 8), generator=g)


def _snapshot(params):
    return [p.detach().clone() for p in params]


def test_pretraining_trains_weights_only_through_the_first_architecture():
    net = tiny_net()
    opt = make_optimisers(net, lr=0.1)
    arch_before = _snapshot(net.arch_parameters())
    teacher_stem, student_stem = _snapshot(net.stems["teacher"].parameters()), _snapshot(net.stems["student"].parameters())
    cells = _snapshot(net.cells.parameters())
    result = search_step(net, opt, OhemCrossEntropy(across_processes=True), batch(), None, pretrain=True)
    assert result.arch_loss is None and result.weight_loss > 0
    assert all(torch.equal(a, b) for a, b in zip(arch_before, net.arch_parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(teacher_stem, net.stems["teacher"].parameters()))
    assert all(torch.equal(a, b) for a, b in zip(student_stem, net.stems["student"].parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(cells, net.cells.parameters()))


def test_search_step_updates_both_architectures_and_the_weights():
    net = tiny_net()
    opt = make_optimisers(net, lr=0.1)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    result = search_step(net, opt, OhemCrossEntropy(across_processes=True), batch(1), batch(2), pretrain=False)
    changed = {name for name, p in net.named_parameters() if not torch.equal(before[name], p)}
    for arch in ("teacher", "student"):
        for name in ("alpha_0", "alpha_1", "alpha_2", "beta_1", "beta_2"):
            assert f"arch.{arch}.{name}" in changed
    assert {"arch.student.ratio_0", "arch.student.ratio_1", "arch.student.ratio_2"} <= changed
    assert not any(n.startswith("arch.teacher.ratio") for n in changed)
    assert any(n.startswith("stems.student.") for n in changed)
    assert result.arch_loss is not None and result.latency == {}


def test_latency_term_pulls_the_student_towards_cheap_operators():
    net = tiny_net()
    opt = make_optimisers(net, lr=0.0)
    before = net.arch["student"].alpha_0.detach().clone()
    result = search_step(net, opt, OhemCrossEntropy(across_processes=True), batch(1), batch(2), pretrain=False,
                         latency_fn=expected_cost, latency_weights={"student": 1e4})
    step = net.arch["student"].alpha_0.detach() - before
    # Adam's first step moves each logit by about lr against its gradient's sign; the latency
    # term dominates, so the cheapest op (skip) rises and the dearest (conv_2x) falls in every cell.
    assert (step[:, OP_NAMES.index("skip")] > 0).all()
    assert (step[:, OP_NAMES.index("conv_2x")] < 0).all()
    assert result.latency["student"] == pytest.approx(expected_cost(net, "student").item(), rel=0.05)
    # The teacher has no latency weight: its alphas move by the task loss only.
    assert "teacher" not in result.latency


def test_positive_latency_weight_needs_a_latency_function():
    net = tiny_net()
    with pytest.raises(ValueError, match="no latency function"):
        search_step(net, make_optimisers(net, lr=0.1), OhemCrossEntropy(across_processes=True), batch(1), batch(2), pretrain=False,
                    latency_weights={"student": 0.01})


def test_pretraining_loss_sums_the_sandwich_passes_of_the_first_architecture():
    net = tiny_net().train()  # train-mode BN uses batch statistics: each pass is deterministic
    images, target = batch()
    crit = OhemCrossEntropy(across_processes=True)
    torch.manual_seed(5)
    loss = supernet_loss(net, crit, images, target, pretrain=True)
    torch.manual_seed(5)  # the same random widths
    with torch.no_grad():
        by_hand = sum(crit(o, target) for mode in ("max", "min", "random", "random") for o in net(images, "teacher", mode))
    assert loss.requires_grad
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_pretraining_every_architecture_adds_one_random_pass_of_each_further_one():
    net = tiny_net().train()
    images, target = batch()
    crit = OhemCrossEntropy(across_processes=True)
    torch.manual_seed(5)
    loss = supernet_loss(net, crit, images, target, pretrain=True, every_arch=True)
    torch.manual_seed(5)
    with torch.no_grad():
        student = sum(crit(o, target) for o in net(images, "student", "random"))  # drawn first
        by_hand = student + sum(crit(o, target) for mode in ("max", "min", "random", "random")
                                for o in net(images, "teacher", mode))
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    loss.backward()  # the student's own stem and heads now get gradients in pretraining
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in net.named_parameters() if n.startswith("stems.student"))


@pytest.mark.skipif(not __import__("fasterseg.utils.device", fromlist=["x"]).bf16_supported(torch.device("cpu")),
                    reason="this CPU has no native bf16 (AVX512-BF16/AMX)")
def test_bf16_search_steps_run_in_bf16_and_lower_the_loss():
    images, target = batch()
    net = tiny_net()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(images, "student", "max")[0].dtype == torch.bfloat16  # the passes really are bf16
    opt = make_optimisers(net, lr=0.1)
    losses = [search_step(net, opt, OhemCrossEntropy(across_processes=True), (images, target), (images, target), pretrain=False,
                          latency_fn=expected_cost, latency_weights={"student": 0.1}, amp_dtype=torch.bfloat16)
              for _ in range(8)]
    assert all(torch.isfinite(torch.tensor(r.weight_loss)) for r in losses)
    assert losses[-1].weight_loss < losses[0].weight_loss
    assert all(p.dtype == torch.float32 for p in net.parameters())  # master weights stay fp32
