"""Derivation rules on small hand-made cases."""

import torch

from fasterseg.nets.derive import alphas_to_ops, betas_to_path, choose_ends, objective_acc_lat
from fasterseg.layers.ops import OP_NAMES

SKIP, CONV = OP_NAMES.index("skip"), OP_NAMES.index("conv")


def _alphas(layers, favourite, strength):
    """Logits where op ``favourite[i]`` of cell i (all at scale 0) wins by ``strength[i]``."""
    a0 = torch.zeros(layers, len(OP_NAMES))
    for i, (op, s) in enumerate(zip(favourite, strength)):
        a0[i, op] = s
    return [a0, torch.zeros(layers - 1, len(OP_NAMES)), torch.zeros(layers - 2, len(OP_NAMES))]


def test_skips_beyond_the_minimum_depth_are_replaced_by_their_best_op():
    # Six cells at 1/8, all preferring skip: min depth round(6/3) = 2, so 4 skips may stay;
    # the two least confident (cells 1 and 4) become their runner-up op, conv.
    alphas = _alphas(6, [SKIP] * 6, [3.0, 1.0, 3.0, 2.5, 1.5, 2.8])
    for row in alphas[0]:
        row[CONV] = 0.5
    ops, path, widths = alphas_to_ops(alphas, [0] * 6, [1.0] * 5)
    assert ops == [CONV, CONV]
    assert path == [0, 0]
    # The last cell's skip was kept, so its width entry went with it.
    assert len(widths) == len(ops) - 1


def test_teacher_ignores_skips():
    alphas = _alphas(4, [SKIP] * 4, [5.0] * 4)
    for row in alphas[0]:
        row[CONV] = 1.0
    ops, path, _ = alphas_to_ops(alphas, [0] * 4, [1.0] * 3, ignore_skip=True)
    assert ops == [CONV] * 4 and path == [0] * 4


def test_path_to_one_sixteenth_goes_down_where_beta_is_largest():
    layers = 8
    betas = [None, torch.full((layers - 2, 2), 0.5), torch.full((layers - 3, 2), 0.5)]
    betas[1][4] = torch.tensor([0.9, 0.1])
    path = betas_to_path(betas, 1, layers)
    assert path == [0, 0, 0, 0, 0, 1, 1, 1]


def test_branch_pairing_follows_the_latency_objective():
    # Equal accuracy: the faster pairing wins.
    assert choose_ends(70.0, 6.0, 70.0, 7.0) == (2, 0)
    assert choose_ends(70.0, 7.0, 70.0, 6.0) == (2, 1)
    # Hand-computed: 70 * (8.3/8.3)^-0.07 = 70.
    assert objective_acc_lat(70.0, 8.3) == 70.0
    assert abs(objective_acc_lat(70.0, 16.6) - 70.0 * 2 ** -0.07) < 1e-12


def test_at_eight_layers_the_one_thirty_second_path_is_fixed_and_at_sixteen_it_follows_the_betas():
    """Why the paper's latency split cannot speed up an 8-layer student (issue 30): the rules place the
    two down-samplings of the 1/32 branch at (i + 1, j + 2) with 1 <= i < j - 1 and j < layers - 4, which
    at 8 layers leaves i = 1, j = 3 only: the path is the same whatever the betas say."""
    g = torch.Generator().manual_seed(0)

    def paths(layers):
        found = set()
        for _ in range(50):
            betas = [None, torch.rand(layers - 2, 2, generator=g), torch.rand(layers - 3, 2, generator=g)]
            found.add(tuple(betas_to_path(betas, 2, layers)))
        return found

    assert paths(8) == {(0, 0, 0, 1, 1, 1, 2, 2)}
    assert len(paths(16)) > 10
