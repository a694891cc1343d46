"""Fine-tuning from a trained model file: classes matched by name, provenance recorded, freezing."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

import fasterseg
from fasterseg.config import load_config
from fasterseg.modelfile import ModelMeta, save_model
from fasterseg.nets.network import FasterSegNet, init_weights
from fasterseg.train.config import TrainConfig
from fasterseg.train.init_from import initialise_from
from fasterseg.errors import InitError
from fasterseg.train.trainer import train

from tests.helpers import tiny_genotype

CAMVID = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car", "pedestrian", "bicyclist")


def _saved(path, classes, seed=1, genotype=None, aux=True):
    torch.manual_seed(seed)
    g = replace(genotype or tiny_genotype(), num_classes=len(classes))
    net = FasterSegNet(g, aux_heads=aux)
    init_weights(net)
    for p in net.parameters():  # distinct, recognisable values
        p.data.uniform_(-1, 1)
    save_model(path, net, ModelMeta(genotype=g, class_names=tuple(classes)), include_aux=aux)
    return net


def test_classifier_rows_follow_class_names_and_new_classes_stay_fresh(tmp_path):
    source_classes = ("road", "car", "sky", "rider")  # another order, a class the target lacks
    source = _saved(tmp_path / "src.safetensors", source_classes)
    target_classes = ("sky", "car", "bus", "road")  # "bus" is new
    torch.manual_seed(7)
    target = FasterSegNet(replace(tiny_genotype(), num_classes=4), aux_heads=True)
    init_weights(target)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    record = initialise_from(target, tmp_path / "src.safetensors", target_classes)
    assert record["classes_kept"] == ["sky", "car", "road"] and record["classes_new"] == ["bus"]
    w_src, w_dst = source.heads8.conv_1x1.weight, target.heads8.conv_1x1.weight
    for row, name in enumerate(target_classes):
        if name == "bus":
            assert torch.equal(w_dst[row], fresh["heads8.conv_1x1.weight"][row])
        else:
            assert torch.equal(w_dst[row], w_src[source_classes.index(name)])
    assert torch.equal(target.heads8.conv_1x1.bias[3], source.heads8.conv_1x1.bias[0])  # road
    assert torch.equal(target.stem[0].conv[0].weight, source.stem[0].conv[0].weight)  # the rest by name


def test_a_shipped_model_without_aux_heads_leaves_them_fresh(tmp_path):
    _saved(tmp_path / "src.safetensors", CAMVID, aux=False)
    target = FasterSegNet(tiny_genotype(), aux_heads=True)
    record = initialise_from(target, tmp_path / "src.safetensors", CAMVID)
    assert record["tensors_fresh"] and all(k.startswith(("heads16.", "heads32.")) for k in record["tensors_fresh"])


def test_another_architecture_or_no_shared_class_is_refused(tmp_path):
    wider = replace(tiny_genotype(), base_channels=8)
    _saved(tmp_path / "wide.safetensors", CAMVID, genotype=wider)
    with pytest.raises(InitError, match="another architecture"):
        initialise_from(FasterSegNet(tiny_genotype()), tmp_path / "wide.safetensors", CAMVID)
    _saved(tmp_path / "other.safetensors", ("a", "b"))
    with pytest.raises(InitError, match="no class name"):
        initialise_from(FasterSegNet(tiny_genotype()), tmp_path / "other.safetensors", CAMVID)


def _cfg(toy, out, name, *extra):
    spec, geno = toy
    return load_config(TrainConfig, None, [f"data.spec={spec}", f"out_dir={out}", f"name={name}", "epochs=2",
                                           "iters_per_epoch=6", "batch_size=4", "data.crop_size=[64, 64]",
                                           "val_every=1", "optim.lr=0.05", *extra])


def test_fine_tuning_starts_where_the_trained_model_ended_and_records_it(toy, tmp_path):
    trained = train(_cfg(toy, tmp_path, "base", f"genotype={toy[1]}", "epochs=3"), show_progress=False)
    scratch = train(_cfg(toy, tmp_path, "scratch", f"genotype={toy[1]}", "epochs=1"), show_progress=False)
    tuned = train(_cfg(toy, tmp_path, "tuned", f"init={trained.model_path}", "epochs=1"), show_progress=False)
    assert tuned.history[0]["loss"] < scratch.history[0]["loss"]
    assert tuned.best_miou > scratch.best_miou
    init = fasterseg.load_model(tuned.model_path).meta.extra["init"]
    assert init["init_from"] == str(trained.model_path) and len(init["classes_kept"]) == 11
    assert json.loads((tuned.run_dir / "init.json").read_text())["classes_new"] == []


def test_frozen_layers_keep_their_weights_and_statistics(toy, tmp_path):
    trained = train(_cfg(toy, tmp_path, "base2", f"genotype={toy[1]}", "epochs=1"), show_progress=False)
    tuned = train(_cfg(toy, tmp_path, "frozen", f"init={trained.model_path}", "freeze=stem", "epochs=1"),
                  show_progress=False)
    before, after = fasterseg.load_model(trained.model_path), fasterseg.load_model(tuned.model_path)
    for (name, a), b in zip(before.state_dict().items(), after.state_dict().values()):
        if name.startswith("stem."):
            assert torch.equal(a, b), name
    assert not torch.equal(before.heads8.conv_1x1.weight, after.heads8.conv_1x1.weight)
    with pytest.raises(Exception, match="no parameters under 'stm'"):
        train(_cfg(toy, tmp_path, "typo", f"init={trained.model_path}", "freeze=stm"), show_progress=False)
    assert not (tmp_path / "typo").exists()


def test_the_documented_freeze_example_names_real_modules():
    """The example in the field's comment (the configuration reference shows it) freezes what it
    names, and the old spelling of a cell is answered with the real names."""
    import re

    import yaml

    from fasterseg.nets.network import FasterSegNet
    from fasterseg.train.config import TrainConfig
    from fasterseg.train.init_from import freeze
    from fasterseg.utils.configdoc import field_comments
    from tests.helpers import tiny_genotype

    example = re.search(r"or (\[.*\])", field_comments(TrainConfig)["freeze"]).group(1)
    prefixes = yaml.safe_load(example)
    model = FasterSegNet(tiny_genotype(), aux_heads=True)
    frozen = freeze(model, prefixes)
    assert {n.split(".")[0] if n.startswith("stem") else ".".join(n.split(".")[:2]) for n in frozen} == set(prefixes)
    with pytest.raises(Exception, match=r"modules under 'cells': cells\.0-0, cells\.1-0"):
        freeze(FasterSegNet(tiny_genotype()), ["cells.0_0"])


def test_the_builtin_model_is_named_camvid_and_its_fresh_heads_are_reported(toy, tmp_path, capsys):
    """`--init camvid` (custom.md's example) starts from the shipped model, which has no
    auxiliary heads: the one-line report says how many tensors start fresh, and where."""
    from fasterseg.cli import main
    from fasterseg.models import builtin_model_path

    spec, _ = toy
    assert main(["train", "--init", "camvid", "--data", spec, "--out-dir", str(tmp_path), "--name", "ft", "--quiet",
                 "--set", "epochs=1", "--set", "iters_per_epoch=1", "--set", "batch_size=2",
                 "--set", "data.crop_size=[64, 64]", "--set", "data.workers=0", "--set", "val_every=0"]) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "ft" / "init.json").read_text())
    assert record["init_from"] == str(builtin_model_path())
    fresh = record["tensors_fresh"]
    assert fresh and all(name.startswith(("heads16", "heads32")) for name in fresh)
    assert f"{len(fresh)} tensors the file lacks start fresh" in out and "heads16 (" in out
    assert main(["info", "camvid"]) == 0
    assert "heldout mIoU" in capsys.readouterr().out  # the shipped file's provenance, by its short name
