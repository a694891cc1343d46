"""Random students conditioned on latency: inside the window, reproducible, independent."""

import pytest

from fasterseg.search.random_students import sample_students_at_latency
from fasterseg.space.config import ArchSpec, SupernetConfig

SPACE = SupernetConfig(layers=8, base_channels=12, width_choices=[1 / 3, 0.5, 2 / 3, 5 / 6, 1.0], num_classes=11,
                       archs=[ArchSpec("student", 1 / 3, 0.5, True, False)])


OP_COST = {"skip": 0.1, "conv": 1.0, "conv_downup": 0.4, "conv_2x": 2.0, "conv_2x_downup": 0.8}


def mega_macs(genotype) -> float:
    """A cheap latency model: each cell costs its operator's factor times its output width,
    a quarter per halving of the resolution."""
    return sum(OP_COST[op] * w / 4 ** scale for b in genotype.branches
               for op, scale, w in zip(b.ops, b.path, (*b.widths, genotype.head_width)))


def test_students_fall_in_the_latency_window_and_are_reproducible():
    # Aim well below what unconditioned draws give: the chain has to walk there.
    free = sample_students_at_latency(SPACE, "student", mega_macs, target_ms=1e9, tolerance=1.0, count=8, seed=3,
                                      mix_steps=0)
    typical = sorted(s.latency_ms for s in free)[len(free) // 2]
    target = 0.6 * typical
    students = sample_students_at_latency(SPACE, "student", mega_macs, target, tolerance=0.05, count=3, seed=1,
                                          mix_steps=50)
    for s in students:
        assert abs(mega_macs(s.genotype) - target) <= 0.05 * target  # the model's own figure, recomputed
        assert s.latency_ms == mega_macs(s.genotype)
        assert s.genotype.ends in ((2, 0), (2, 1)) and s.genotype.stem_width == pytest.approx(1 / 3)
        assert s.genotype.head_width == 0.5 and s.steps >= 50
    assert len({s.genotype.to_json() for s in students}) == 3  # independent chains, different networks
    again = sample_students_at_latency(SPACE, "student", mega_macs, target, tolerance=0.05, count=3, seed=1,
                                       mix_steps=50)
    assert [s.genotype for s in again] == [s.genotype for s in students]


def test_an_unreachable_window_is_reported():
    with pytest.raises(ValueError, match=r"no network within 5% of 0.001 ms after 100 proposals"):
        sample_students_at_latency(SPACE, "student", mega_macs, 1e-3, count=1, max_steps=100)


def test_a_student_is_scored_by_its_choices_alone_and_the_supernet_is_left_as_it_was():
    import numpy as np
    import torch

    from fasterseg.data.transforms import EvalTransform
    from fasterseg.search.random_students import one_hot, params_from_dict, params_to_dict, score_in_supernet
    from fasterseg.space.supernet import Supernet
    from tests.search.test_epoch import Pairs

    space = SupernetConfig(layers=6, base_channels=2, width_choices=[0.5, 1.0], num_classes=3,
                           archs=[ArchSpec("student", 0.5, 0.5, True, False)])
    torch.manual_seed(0)
    net = Supernet(space).eval()
    rng = np.random.default_rng(0)
    data = Pairs([(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), rng.integers(0, 3, (64, 64), dtype=np.uint8))
                  for _ in range(2)], EvalTransform(downsample=1))
    student = sample_students_at_latency(space, "student", mega_macs, 1e9, tolerance=1.0, count=1, mix_steps=0)[0]
    params = student.params
    assert params_from_dict(params_to_dict(params)).alphas[0].equal(params.alphas[0])  # the JSON round trip
    before = net.arch_params("student")
    scores = score_in_supernet(net, "student", params, data)
    after = net.arch_params("student")
    assert all(a.equal(b) for a, b in zip(before.alphas + before.ratios, after.alphas + after.ratios))
    # Only the argmax matters: other logits moved, same choices, same scores ...
    nudged = params.clone()
    for t in nudged.alphas + nudged.ratios + [b for b in nudged.betas if b is not None]:
        t.mul_(0.5)
    assert score_in_supernet(net, "student", nudged, data) == scores
    # ... and the supernet then computes that one network: the same as with the hard choices set by hand.
    net.arch["student"].load_arch_params(one_hot(params))
    from fasterseg.search.epoch import evaluate_outputs

    assert evaluate_outputs(net, "student", data, "argmax") == scores
