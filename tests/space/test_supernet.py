"""The supernet: shapes, gradients, width sampling, and agreement with derived networks."""

import copy
import json

import pytest
import torch

from fasterseg.config import load_config
from fasterseg.errors import ConfigError
from fasterseg.genotype import Branch, Genotype
from fasterseg.nets.derive import derive_branches
from fasterseg.nets.official import load_official_arch, official_genotype
from fasterseg.layers.ops import OP_NAMES
from fasterseg.space.config import ArchSpec, SupernetConfig
from fasterseg.space.supernet import OUTPUT_NAMES, Supernet

SKIP = OP_NAMES.index("skip")
WIDTHS = [0.5, 0.75, 1.0]


def small_config(layers=6, **kw) -> SupernetConfig:
    return SupernetConfig(
        layers=layers, base_channels=2, width_choices=WIDTHS, num_classes=5,
        archs=[ArchSpec("teacher", 1.0, 1.0, search_width=False, ignore_skip=True),
               ArchSpec("student", 0.75, 0.75, search_width=True)],
        **kw,
    )


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return Supernet(small_config())


@pytest.mark.parametrize("arch", ["teacher", "student"])
def test_five_outputs_in_train_and_eval_mode(supernet, arch):
    x = torch.randn(2, 3, 64, 96)
    supernet.train()
    outs = supernet(x, arch)
    assert len(outs) == len(OUTPUT_NAMES)
    assert all(o.shape == (2, 5, 8, 12) for o in outs)
    supernet.eval()
    with torch.no_grad():
        outs = supernet(torch.randn(1, 3, 50, 70), arch)  # padded to 64x96, cropped back
    assert all(o.shape == (1, 5, 50, 70) for o in outs)
    supernet.train()


def test_inputs_smaller_than_the_network_are_padded_and_cropped_back(supernet):
    supernet.eval()
    with torch.no_grad():
        small = torch.randn(1, 3, 20, 40)
        outs = supernet(small, "student", "max")
        assert all(o.shape == (1, 5, 20, 40) for o in outs)
        # the same as running the zero-padded 64x64 input and cropping, as the derived networks do
        padded = supernet(torch.nn.functional.pad(small, (0, 24, 0, 44)), "student", "max")
    for a, b in zip(outs, padded):
        torch.testing.assert_close(a, b[..., :20, :40])
    supernet.train()


def test_gradients_reach_alphas_betas_and_width_logits(supernet):
    supernet.train()
    supernet.zero_grad()
    x = torch.randn(2, 3, 64, 64)
    for arch in ("teacher", "student"):
        sum(o.square().mean() for o in supernet(x, arch)).backward()
    for arch in ("teacher", "student"):
        params = supernet.arch[arch]
        for name in ("alpha_0", "alpha_1", "alpha_2", "beta_1", "beta_2"):
            grad = getattr(params, name).grad
            assert grad is not None and grad.abs().sum() > 0, (arch, name)
    for name in ("ratio_0", "ratio_1", "ratio_2"):
        grad = getattr(supernet.arch["student"], name).grad
        assert grad is not None and grad.abs().sum() > 0, name
        # The teacher runs at full width: its single-column width logits stay out of the graph.
        assert getattr(supernet.arch["teacher"], name).grad is None
    # Both architectures train the shared cells; each its own stem and heads.
    assert all(p.grad is not None for p in supernet.cells.parameters() if p.dim() == 4 and p.shape[-1] == 3)
    assert all(p.grad is not None for p in supernet.stems.parameters())


def test_architecture_parameters_have_the_official_layout(official_dir):
    with torch.device("meta"):
        net = Supernet(SupernetConfig())  # the paper's sizes, nothing allocated
    for arch, arch_file in (("teacher", "arch_0.json"), ("student", "arch_1.json")):
        ref = json.loads((official_dir / arch_file).read_text())
        index = 0 if arch == "teacher" else 1
        for name, p in net.arch[arch].named_parameters():
            kind, scale = name.split("_")
            assert tuple(p.shape) == (len(ref[f"{kind}_{index}_{scale}"]), len(ref[f"{kind}_{index}_{scale}"][0])), name


@pytest.mark.parametrize("role, arch_file", [("teacher", "arch_0.pt"), ("student", "arch_1.pt")])
def test_official_parameters_loaded_into_the_supernet_derive_the_official_network(official_dir, role, arch_file):
    official = load_official_arch(official_dir / arch_file)
    with torch.device("meta"):
        net = Supernet(SupernetConfig())
    net.arch.to_empty(device="cpu")
    net.arch[role].load_arch_params(official.params)
    expected = official_genotype(official, role)
    assert net.genotype(role, expected.ends) == expected


def test_gumbel_widths_follow_the_width_logits(supernet):
    with torch.no_grad():
        supernet.arch["student"].ratio_1.fill_(0).select(1, 1).fill_(60.0)
    sample = supernet.sample_widths("student", "arch")
    assert sample.index[1] == [1] * (supernet.cfg.layers - 1)
    assert torch.equal(sample.score[1].detach(), torch.ones(supernet.cfg.layers - 1))
    assert sample.score[1].requires_grad
    assert supernet.sample_widths("teacher", "arch").index == supernet.sample_widths("teacher", "max").index
    with torch.no_grad():
        supernet.arch["student"].ratio_1.fill_(1e-3)


def test_gumbel_widths_from_a_generator_are_reproducible_and_leave_the_global_stream(supernet):
    with torch.no_grad():
        supernet.arch["student"].ratio_0.copy_(torch.randn(supernet.arch["student"].ratio_0.shape))
    torch.manual_seed(3)
    before = torch.get_rng_state()
    a = supernet.sample_widths("student", "arch", generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), before)
    b = supernet.sample_widths("student", "arch", generator=torch.Generator().manual_seed(7))
    assert a.index == b.index
    assert a.score[0].requires_grad and torch.equal(a.score[0].detach(), torch.ones(len(a.index[0])))
    # Over many draws each width is picked about as often as its softmax probability says.
    logits = supernet.arch["student"].ratio_0[0].detach()
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(len(WIDTHS))
    for _ in range(2000):
        counts[supernet.sample_widths("student", "arch", generator=g).index[0][0]] += 1
    torch.testing.assert_close(counts / 2000, logits.softmax(-1), atol=0.04, rtol=0)
    with torch.no_grad():
        supernet.arch["student"].ratio_0.fill_(1e-3)


def test_min_width_pass_uses_only_the_narrowest_batch_norms(supernet):
    supernet.train()
    cell = supernet.cells[2][1].op.ops[OP_NAMES.index("conv")]
    before = [bn.running_mean.clone() for bn in cell.bn1.bn]
    with torch.no_grad():
        supernet(torch.randn(2, 3, 64, 64), "student", "min")
    after = [bn.running_mean for bn in cell.bn1.bn]
    assert not torch.equal(before[0], after[0])
    assert all(torch.equal(b, a) for b, a in zip(before[1:], after[1:]))


# -- one-hot architecture parameters: the supernet computes the derived network ---------------
LAYERS = 9
DOWN_1, DOWN_2 = 2, 4  # the single "from down" rows of beta_1 and beta_2


def _one_hot_arch(net, arch, seed):
    """Hard alphas (a random non-skip op per cell), hard betas, random width logits."""
    g = torch.Generator().manual_seed(seed)
    p = net.arch[arch]
    with torch.no_grad():
        for a in p.alphas:
            a.fill_(-float("inf"))
            choice = torch.randint(1, len(OP_NAMES), (a.shape[0],), generator=g)
            a.scatter_(1, choice[:, None], 0.0)
        for b, down in ((p.beta_1, DOWN_1), (p.beta_2, DOWN_2)):
            b.copy_(torch.tensor([-float("inf"), 0.0]).expand_as(b))
            b[down] = torch.tensor([0.0, -float("inf")])
        for r in p.ratios:
            r.copy_(torch.randn(r.shape, generator=g))


def _randomise_bn(module, seed):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _last_cell_output(net, x):
    """The derived network's feature at its branch end (the last cell's output)."""
    key = net.plan[-1][0].key
    captured = {}
    handle = net.cells[key].register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    net(x)
    handle.remove()
    return captured["out"]


@pytest.fixture(scope="module")
def one_hot_supernet():
    torch.manual_seed(0)
    net = Supernet(small_config(layers=LAYERS))
    _one_hot_arch(net, "student", seed=1)
    _one_hot_arch(net, "teacher", seed=2)
    with torch.no_grad():
        _randomise_bn(net, seed=3)
    return net.eval()


def test_active_paths_of_hard_betas(one_hot_supernet):
    net = one_hot_supernet
    # beta_1[2] "from down": cell (4, 1/16) reads cell (3, 1/8)'s stride-2 output.
    assert net.active_path("student", 1) == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    # beta_2[4] "from down": cell (7, 1/32) reads cell (6, 1/16)'s stride-2 output.
    assert net.active_path("student", 2) == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert net.active_path("student", 0) == [0] * LAYERS


def test_official_derivation_reads_the_1_16_path_one_layer_early(one_hot_supernet):
    # The official betas2path for the 1/16 end puts the down-sampling at cell m for beta_1[m],
    # while the search network (and the official 1/32 rule) read beta_1[m] as cell m + 1 going
    # down. derive.py reproduces the official rule, so the derived 1/16 branch is the
    # supernet's path shifted one layer earlier.
    net = one_hot_supernet
    derived = derive_branches(net.arch_params("student"), WIDTHS)
    assert list(derived[1].path) == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert list(derived[2].path) == net.active_path("student", 2)
    assert list(derived[0].path) == net.active_path("student", 0)


@pytest.mark.parametrize("arch", ["student", "teacher"])
@pytest.mark.parametrize("end", [0, 1, 2])
def test_one_hot_supernet_computes_the_derived_network(one_hot_supernet, arch, end):
    net = one_hot_supernet
    if end == 1:
        # See the test above: the 1/16 branch is built on the path the supernet really computes.
        genotype = net.active_genotype(arch, 1)
    else:
        genotype = net.genotype(arch, (end,))
        assert len(genotype.branches[0].ops) == LAYERS  # no skips to prune
        assert genotype == net.active_genotype(arch, end)
    derived_net = net.subnet(genotype, arch).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = _last_cell_output(derived_net, x)
        got = net.features(x, arch, "argmax")[end]
    assert got.shape == expected.shape
    assert torch.equal(got, expected)


@pytest.mark.parametrize("arch", ["student", "teacher"])
def test_one_hot_supernet_matches_in_train_mode_too(one_hot_supernet, arch):
    # Batch statistics instead of running ones: both networks see identical tensors.
    net = copy.deepcopy(one_hot_supernet).train()
    derived_net = net.subnet(net.genotype(arch, (2,)), arch).train()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = _last_cell_output(derived_net, x)
        got = net.features(x, arch, "argmax")[2]
    assert torch.equal(got, expected)


def test_hand_out_checks_the_genotype(one_hot_supernet):
    net = one_hot_supernet
    g = net.genotype("student", (0,))
    short = Genotype((Branch(0, g.branches[0].ops[:4], (0,) * 4, g.branches[0].widths[:3]),),
                     num_classes=5, base_channels=2, stem_width=0.75, head_width=0.75)
    with pytest.raises(ValueError, match="pass positions"):
        net.subnet_state_dict(short, "student")
    assert net.subnet_state_dict(short, "student", positions=[[0, 1, 2, 3]])
    with pytest.raises(ValueError, match="stem_width"):
        net.subnet_state_dict(g, "teacher")


def test_derivation_needs_six_layers():
    net = Supernet(small_config(layers=5))
    with pytest.raises(ValueError, match="at least 6 layers"):
        net.genotype("student", (2, 0))


def test_config_names_the_bad_field(tmp_path):
    with pytest.raises(ConfigError, match=r"archs\[1\].head_width"):
        SupernetConfig(width_choices=[0.5, 1.0], archs=[ArchSpec("teacher"), ArchSpec("student", 0.5, 0.6, True)])
    with pytest.raises(ConfigError, match="width_choices"):
        SupernetConfig(width_choices=[0.5, 0.9])
    with pytest.raises(ConfigError, match="even channel count"):
        SupernetConfig(base_channels=1, width_choices=[5 / 16, 1.0], archs=[ArchSpec("teacher")])
    path = tmp_path / "supernet.yaml"
    path.write_text("layers: 5\narchs:\n  - {name: only, stem_width: 0.5, head_width: 0.5, search_width: true}\n")
    cfg = load_config(SupernetConfig, path, ["base_channels=6"])
    assert cfg.layers == 5 and cfg.base_channels == 6 and cfg.archs == [ArchSpec("only", 0.5, 0.5, True, False)]
