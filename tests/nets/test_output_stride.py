"""A genotype's ``output_stride: 4``: the 1/8 class scores refined at 1/4 with the stem's 1/4
features (issue 31, item 5). What it must be (untrained, the 1/8 scores resized to 1/4; trained,
plus a correction computed from the stem's 1/4 features), that the genotype file carries it without changing the
paper's files, and that every CPU deploy path and the ONNX export reproduce it (training:
tests/train/test_output_stride_training.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from fasterseg.errors import GenotypeError
from fasterseg.genotype import Genotype
from fasterseg.layers.upsample import interpolate_aligned
from fasterseg.nets.network import FasterSegNet, init_weights
from tests.helpers import assert_cpu_deploy_paths_match_eager, tiny_genotype


def _pair() -> tuple[FasterSegNet, FasterSegNet]:
    """The paper's network and the refined one with the same weights where they share them."""
    torch.manual_seed(0)
    paper = FasterSegNet(tiny_genotype(), aux_heads=False)
    init_weights(paper)
    refined = FasterSegNet(replace(tiny_genotype(), output_stride=4), aux_heads=False)
    init_weights(refined)
    missing = refined.load_state_dict(paper.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("refine4.") for k in missing)
    return paper.eval(), refined.eval()


def test_untrained_it_is_the_paper_network_resized_to_a_quarter():
    paper, refined = _pair()
    x = torch.randn(2, 3, 72, 100)  # padded to 96x128 inside
    with torch.no_grad():
        low = paper.logits8(x)
        scores = refined.logits8(x)
        assert tuple(low.shape[2:]) == (12, 16) and tuple(scores.shape[2:]) == (24, 32)
        torch.testing.assert_close(scores, interpolate_aligned(low, (24, 32)), atol=1e-6, rtol=0)
        assert refined(x).shape == (2, tiny_genotype().num_classes, 72, 100)


def test_trained_its_correction_is_computed_from_the_stems_quarter_features():
    """With a classifier that is no longer zero, the refined scores are the resized 1/8 scores plus
    the correction, recomputed here by hand from the stem's second conv (the 1/4 features)."""
    paper, refined = _pair()
    torch.manual_seed(1)
    torch.nn.init.normal_(refined.refine4.classify.weight, std=0.5)
    x = torch.randn(1, 3, 64, 96)  # a multiple of the stride: nothing padded
    r = refined.refine4
    with torch.no_grad():
        quarter = paper.stem[1](paper.stem[0](x))
        up = interpolate_aligned(paper.logits8(x), quarter.shape[2:])
        correction = r.classify(torch.relu(r.fuse.bn(r.fuse.conv(torch.cat([up, r.reduce(quarter)], 1)))))
        assert quarter.shape[2:] == (16, 24) and correction.abs().max() > 0.1
        torch.testing.assert_close(refined.logits8(x), up + correction, atol=1e-5, rtol=1e-5)


def test_the_genotype_file_carries_it_and_the_papers_files_are_unchanged(tmp_path):
    paper = tiny_genotype()
    assert "output_stride" not in paper.to_dict()  # existing genotypes and their hashes stay as they were
    refined = replace(paper, output_stride=4)
    refined.save(tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text())["output_stride"] == 4
    assert Genotype.load(tmp_path / "g.json") == refined
    with pytest.raises(GenotypeError, match="output_stride.*2"):
        Genotype.from_dict({**paper.to_dict(), "output_stride": 2}, "bad.json")


def test_every_cpu_deploy_path_and_the_onnx_export_reproduce_it(tmp_path):
    from fasterseg.infer.export import export_onnx

    _, model = _pair()
    torch.nn.init.normal_(model.refine4.classify.weight, std=0.5)  # a correction that is not zero
    assert_cpu_deploy_paths_match_eager(model, torch.rand(1, 3, 72, 100), tmp_path)
    pytest.importorskip("onnxruntime")
    report = export_onnx(model, tmp_path / "m.onnx", size=(64, 96), output="logits", check=True, tolerance=1e-3)
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-3



def test_the_latency_tables_say_they_do_not_cover_it():
    """A table sums the paper's pieces; a refined network is timed on its deploy path instead of
    being under-counted."""
    from fasterseg.latency.specs import network_pieces

    assert network_pieces(tiny_genotype(), (64, 96))
    with pytest.raises(GenotypeError, match="output_stride 4.*fasterseg bench"):
        network_pieces(replace(tiny_genotype(), output_stride=4), (64, 96))
