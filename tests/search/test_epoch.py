"""End-of-epoch scoring, derivation and latency-weight adaptation."""

import json

import numpy as np
import pytest
import torch

from fasterseg.data.transforms import EvalTransform
from fasterseg.genotype import Genotype
from fasterseg.nets.summary import count_macs
from fasterseg.search.epoch import adapt_latency_weight, derive_arch, evaluate_outputs, save_derived
from fasterseg.space.config import ArchSpec, SupernetConfig
from fasterseg.space.supernet import Supernet


def test_latency_weight_follows_the_fps_window():
    assert adapt_latency_weight(0.01, [180.0, 150.0], 155, 175) == 0.005  # one above the window wins
    assert adapt_latency_weight(0.01, [160.0, 150.0], 155, 175) == 0.02
    assert adapt_latency_weight(0.01, [160.0, 170.0], 155, 175) == 0.01
    assert adapt_latency_weight(0.01, [175.0, 160.0], 155, 175) == 0.005  # the bounds count as outside


class Pairs:
    """A dataset of fixed (image, label) pairs run through a transform."""

    def __init__(self, pairs, transform):
        self.pairs, self.transform = pairs, transform

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        return self.transform(*self.pairs[i])


def small_net():
    torch.manual_seed(0)
    return Supernet(SupernetConfig(
        layers=7, base_channels=2, width_choices=[0.5, 1.0], num_classes=3,
        archs=[ArchSpec("teacher", 1.0, 1.0, False, True), ArchSpec("student", 0.5, 0.5, True, False)],
    ))


def test_scores_are_the_confusion_matrix_miou_of_each_output():
    net = small_net()
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), rng.integers(0, 3, (64, 64), dtype=np.uint8))]
    data = Pairs(pairs, EvalTransform(downsample=1))
    scores = evaluate_outputs(net, "teacher", data, widths="max")
    # Recompute one output by hand: IoU per class from counts, mean over present classes.
    net.eval()
    image, label = data[0]
    with torch.no_grad():
        pred = net(image[None], "teacher", "max")[3].argmax(1)[0]
    ious = []
    for c in range(3):
        inter = ((pred == c) & (label == c)).sum().item()
        union = ((pred == c) | (label == c)).sum().item()
        if union:
            ious.append(inter / union)
    assert len(scores) == 5
    assert scores[3] == pytest.approx(sum(ious) / len(ious))


def test_derivation_keeps_the_pairing_the_objective_prefers(tmp_path):
    net = small_net()

    def latency(genotype):  # MAC-proportional latency of the derived network at 256x512
        return count_macs(genotype, (256, 512)) / 1e8

    # Equal accuracy: the faster pairing wins.
    derived = derive_arch(net, "student", [0.1, 0.1, 0.1, 0.5, 0.5], latency)
    lat = derived.latency_ms
    assert lat["8_32"] != lat["16_32"]
    assert derived.genotype.ends == ((2, 0) if lat["8_32"] < lat["16_32"] else (2, 1))
    assert lat["16_32"] == pytest.approx(latency(net.genotype("student", (2, 1))))
    # The slower pairing wins when its accuracy outweighs the latency factor (lat / 8.3) ^ -0.07.
    slow, fast = ("8_32", "16_32") if lat["8_32"] > lat["16_32"] else ("16_32", "8_32")
    factor = (lat[slow] / lat[fast]) ** 0.07  # accuracy ratio at which the two tie
    miou = {fast: 0.5, slow: 0.5 * factor * 1.01}
    ends = derive_arch(net, "student", [0.1, 0.1, 0.1, miou["8_32"], miou["16_32"]], latency).genotype.ends
    assert ends == ((2, 0) if slow == "8_32" else (2, 1))
    miou[slow] = 0.5 * factor * 0.99
    ends = derive_arch(net, "student", [0.1, 0.1, 0.1, miou["8_32"], miou["16_32"]], latency).genotype.ends
    assert ends == ((2, 0) if fast == "8_32" else (2, 1))
    save_derived(derived, tmp_path / "student.json")
    data = json.loads((tmp_path / "student.json").read_text())
    assert Genotype.from_dict(data["genotype"]) == derived.genotype
    assert data["fps"]["16_32"] == pytest.approx(1000 / derived.latency_ms["16_32"])


def test_batchnorm_recalibration_averages_the_batches_and_leaves_the_rest(tmp_path):
    from fasterseg.search.epoch import recalibrate_batchnorm

    net = small_net()
    norms = dict(net.named_modules())
    torch.manual_seed(1)
    batches = [(torch.randn(2, 3, 32, 32), None) for _ in range(3)]
    # What each batch norm sees at full width, caught by hooks in a train-mode pass per batch.
    seen: dict[str, list[torch.Tensor]] = {}

    def catch(name):
        def hook(module, args):
            seen.setdefault(name, []).append(args[0].detach().float().mean((0, 2, 3)))
        return hook

    bn_names = [n for n, m in norms.items() if isinstance(m, torch.nn.BatchNorm2d)]
    handles = [norms[n].register_forward_pre_hook(catch(n)) for n in bn_names]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.train()
        for images, _ in batches:
            net(images, "teacher", "max")
    for h in handles:
        h.remove()
    net.load_state_dict(before)  # the hook passes moved the running statistics: undo
    net.eval()
    reached = recalibrate_batchnorm(net, "teacher", batches, "max")
    assert reached == len(seen) and 0 < reached < len(bn_names)  # the 0.5-width norms are not used at "max"
    after = net.state_dict()
    for name in bn_names:
        bn = norms[name]
        if name in seen:  # the plain average of the batch means (equal batch sizes and shapes)
            torch.testing.assert_close(bn.running_mean, torch.stack(seen[name]).mean(0), rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(bn.running_mean, before[f"{name}.running_mean"])
            assert torch.equal(bn.running_var, before[f"{name}.running_var"])
        assert bn.momentum == 0.1 and torch.equal(bn.num_batches_tracked, before[f"{name}.num_batches_tracked"])
    assert all(torch.equal(after[k], before[k]) for k in before if "running" not in k)  # weights untouched
    assert not net.training  # the mode it had
