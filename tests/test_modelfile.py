import contextlib
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file as torch_load_file
from safetensors.torch import save_file

import fasterseg
from fasterseg.errors import ModelFileError
from fasterseg.modelfile import ModelMeta, read_model_file, save_model
from fasterseg.nets.network import FasterSegNet, init_weights

from tests.nets.test_network import tiny_genotype


@contextlib.contextmanager
def open_header(path):
    """A model file's header as a dict."""
    with safe_open(str(path), framework="pt") as f:
        yield dict(f.metadata())


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


def test_int8_weights_round_trip_within_half_a_step_per_channel(tmp_path):
    """int8 storage: each quantised weight lands within half its channel's step (max |w| / 127 / 2) of
    the original, each channel's largest weight is exact to float16's rounding of the scale, and
    batch norms and biases are kept as in an fp16 file."""
    from fasterseg.modelfile import INT8_SCALE_SUFFIX

    model, meta = _model_and_meta()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    path = save_model(tmp_path / "q.safetensors", model, meta, include_aux=False, weights="int8")
    fp16 = save_model(tmp_path / "h.safetensors", model, meta, include_aux=False, weights="fp16")
    with safe_open(str(path), framework="pt") as f:
        header, names = f.metadata(), list(f.keys())
    listed = set(json.loads(header["int8_weights"]))
    assert header["format_version"] == "2" and listed
    assert {n[: -len(INT8_SCALE_SUFFIX)] for n in names if n.endswith(INT8_SCALE_SUFFIX)} == listed
    state, _ = read_model_file(path)
    half, _ = read_model_file(fp16)
    assert set(state) == set(half)
    for name, value in state.items():
        if name in listed:
            assert value.dtype == torch.float32, name
            w = original[name].reshape(original[name].shape[0], -1)
            step = w.abs().amax(dim=1) / 127
            error = (value.reshape_as(w) - w).abs()
            assert bool((error <= step[:, None] / 2 + 1e-7).all()), name
            assert original[name].dim() >= 2
        else:
            torch.testing.assert_close(value, half[name], rtol=0, atol=0)  # kept as the fp16 file keeps it
    assert "heads8.conv_1x1.bias" not in listed and not any("bn" in n for n in listed)
    assert path.stat().st_size < fp16.stat().st_size
    loaded = fasterseg.load_model(path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference, quantised = model.eval()(x), loaded(x)
    assert float((reference - quantised).abs().max()) < 0.05 * float(reference.abs().max())


def test_int8_file_whose_scales_are_missing_is_refused_by_name(tmp_path):
    from fasterseg.modelfile import INT8_SCALE_SUFFIX

    model, meta = _model_and_meta()
    path = save_model(tmp_path / "q.safetensors", model, meta, include_aux=False, weights="int8")
    state = dict(torch_load_file(path))
    with open_header(path) as header:
        name = json.loads(header["int8_weights"])[0]
        del state[name + INT8_SCALE_SUFFIX]
        save_file(state, str(tmp_path / "broken.safetensors"), metadata=header)
    with pytest.raises(ModelFileError, match=f"int8 weight '{name}' has no scales"):
        read_model_file(tmp_path / "broken.safetensors")
    header = dict(header)
    header["format_version"] = "3"
    save_file(dict(torch_load_file(path)), str(tmp_path / "future.safetensors"), metadata=header)
    with pytest.raises(ModelFileError, match="format version 3 is not supported"):
        read_model_file(tmp_path / "future.safetensors")
