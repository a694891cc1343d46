import pytest
import torch
from safetensors.torch import save_file

import fasterseg
from fasterseg.errors import ModelFileError
from fasterseg.modelfile import ModelMeta, read_model_file, save_model
from fasterseg.nets.network import FasterSegNet, init_weights

from tests.nets.test_network import tiny_genotype


def _model_and_meta():
    torch.manual_seed(0)
    g = tiny_genotype()
    model = FasterSegNet(g)
    init_weights(model)
    meta = ModelMeta(genotype=g, class_names=tuple(f"c{i}" for i in range(5)), train_size=(64, 128))
    return model, meta


def test_round_trip_gives_the_same_network_and_metadata(tmp_path):
    model, meta = _model_and_meta()
    path = save_model(tmp_path / "m.safetensors", model, meta)
    loaded = fasterseg.load_model(path)
    assert not loaded.training
    assert loaded.meta.genotype == meta.genotype
    assert loaded.meta.class_names == meta.class_names
    assert loaded.meta.train_size == (64, 128)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)
    # Only the model file is left in the folder: no temporary leftovers.
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_plain_safetensors_without_our_header_is_rejected(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelFileError, match="not a fasterseg model file"):
        read_model_file(path)


def test_weights_that_do_not_fit_the_genotype_are_named(tmp_path):
    model, meta = _model_and_meta()
    path = tmp_path / "m.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["heads8.conv_1x1.bias"] = torch.zeros(7)
    save_file(state, str(path), metadata=meta.to_header())
    with pytest.raises(ModelFileError, match="heads8.conv_1x1.bias"):
        fasterseg.load_model(path)


def test_garbage_file_is_rejected_with_its_name(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="garbage.safetensors"):
        fasterseg.load_model(path)


def test_class_names_must_match_the_genotype():
    model, meta = _model_and_meta()
    with pytest.raises(ModelFileError, match="class_names"):
        ModelMeta(genotype=meta.genotype, class_names=("a", "b"))


def test_half_precision_file_without_aux_heads_is_smaller_and_close(tmp_path):
    model, meta = _model_and_meta()
    full = save_model(tmp_path / "full.safetensors", model, meta)
    small = save_model(tmp_path / "small.safetensors", model, meta, half=True, include_aux=False)
    assert small.stat().st_size < 0.6 * full.stat().st_size
    loaded = fasterseg.load_model(small)
    assert not loaded.aux_heads and loaded.meta.aux_heads is False
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), rtol=1e-2, atol=1e-2)
