"""A genotype's ``input_norm: image``: per-image standardisation before the stem. What it must be
(blind to any per-channel affine change of the input, computed on the unpadded image), that the
genotype file carries it without changing the paper's files, that every CPU deploy path and
ONNX export reproduce it, and that training sets it from its config."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from fasterseg.errors import GenotypeError
from fasterseg.genotype import Genotype
from fasterseg.layers.input_norm import standardise_per_image
from fasterseg.nets.network import FasterSegNet, init_weights
from tests.helpers import assert_cpu_deploy_paths_match_eager, tiny_genotype


def _net(input_norm: str = "image") -> FasterSegNet:
    torch.manual_seed(0)
    model = FasterSegNet(replace(tiny_genotype(), input_norm=input_norm), aux_heads=False)
    init_weights(model)
    with torch.no_grad():  # batch-norm statistics away from (0, 1)
        model.train()
        for _ in range(2):
            model(torch.randn(2, 3, 64, 96))
    return model.eval()


def test_standardisation_by_hand():
    x = torch.tensor([[1.0, 3.0], [5.0, 7.0]]).expand(1, 3, 2, 2).clone()  # mean 4, population std sqrt(5)
    x[0, 2] = 2.0  # a constant channel stays finite: 0
    out = standardise_per_image(x)
    torch.testing.assert_close(out[0, 0], (torch.tensor([[1.0, 3.0], [5.0, 7.0]]) - 4) / 5 ** 0.5, atol=1e-4, rtol=0)
    assert torch.equal(out[0, 2], torch.zeros(2, 2))


def test_the_network_is_blind_to_exposure_contrast_and_colour_casts():
    model = _net()
    x = torch.randn(2, 3, 64, 96)  # a multiple of the stride: nothing padded
    gain, offset = torch.tensor([1.7, 0.6, 1.2]).view(1, 3, 1, 1), torch.tensor([0.5, -0.3, 0.9]).view(1, 3, 1, 1)
    paper = _net("dataset")
    paper.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model(x * gain + offset), model(x), atol=2e-4, rtol=1e-3)
        assert not torch.allclose(paper(x * gain + offset), paper(x), atol=1e-2)  # the paper's network is not
        odd = torch.randn(2, 3, 72, 100)  # padded to 96x128 first: the statistics are the padded input's
        padded = torch.nn.functional.pad(odd, (0, 28, 0, 24))
        torch.testing.assert_close(model.logits8(odd), paper.logits8(standardise_per_image(padded)), atol=1e-5, rtol=1e-5)


def test_the_genotype_file_carries_it_and_the_papers_files_are_unchanged(tmp_path):
    paper = tiny_genotype()
    assert "input_norm" not in paper.to_dict()  # existing genotypes and their hashes stay as they were
    image = replace(paper, input_norm="image")
    image.save(tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text())["input_norm"] == "image"
    assert Genotype.load(tmp_path / "g.json") == image
    bad = {**paper.to_dict(), "input_norm": "frame"}
    with pytest.raises(GenotypeError, match="input_norm.*'frame'"):
        Genotype.from_dict(bad, "bad.json")


def test_every_cpu_deploy_path_and_the_onnx_export_reproduce_it(tmp_path):
    from fasterseg.infer.export import export_onnx

    model = _net()
    assert_cpu_deploy_paths_match_eager(model, torch.rand(1, 3, 72, 100) * 0.5 + 0.4, tmp_path)  # a bright, flat frame
    pytest.importorskip("onnxruntime")
    report = export_onnx(model, tmp_path / "m.onnx", size=(64, 96), output="logits", check=True, tolerance=1e-3)
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-3
