"""Search batches and the search loop on a small CamVid-layout dataset written to disk."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from fasterseg.errors import ConfigError, DatasetError
from fasterseg.genotype import Genotype
from fasterseg.nets.summary import count_macs
from fasterseg.search.data import IMAGENET_MEAN, IMAGENET_STD, SearchTransform, half_loader, split_halves
from fasterseg.search.config import SearchConfig
from fasterseg.search.loop import iterations_per_epoch, run_phase
from fasterseg.space.config import ArchSpec, SupernetConfig
from fasterseg.space.supernet import Supernet
from tests.helpers import tensorboard_scalars


def write_camvid(root, n=6, size=(64, 96), seed=0, splits=("train",)):
    """CamVid layout: {split}.txt of 'image label' lines; labels 0..10 and 11 (void)."""
    rng = np.random.default_rng(seed)
    for split in splits:
        lines = []
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(exist_ok=True)
        for i in range(n):
            label = rng.integers(0, 12, size=size, dtype=np.uint8)
            image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / split / f"{i}.png")
            Image.fromarray(label, mode="L").save(root / f"{split}annot" / f"{i}.png")
            lines.append(f"{split}/{i}.png {split}annot/{i}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_transform_keeps_image_and_label_aligned():
    torch.manual_seed(0)
    label = np.arange(40 * 50, dtype=np.int64).reshape(40, 50) % 11
    image = np.repeat((label * 20).astype(np.uint8)[..., None], 3, axis=2)
    t = SearchTransform(crop=(32, 48), scales=(1.0,), downsample=1, label_stride=1)
    for _ in range(5):  # random flips and crop positions
        img, lab = t(image, label)
        red = img[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
        assert torch.allclose(red * 255, lab.float() * 20, atol=1e-3)


def test_transform_pads_with_ignore_and_shrinks_the_label_to_1_8():
    torch.manual_seed(0)
    label = np.zeros((20, 30), dtype=np.uint8)
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    img, lab = SearchTransform(crop=(32, 48), scales=(1.0,), downsample=1)(image, label)
    assert img.shape == (3, 32, 48) and lab.shape == (4, 6) and lab.dtype == torch.long
    # 20 of 32 rows are image: label rows 0..2 (pixels 0, 8, 16) are 0, row 3 (pixel 24) is padding.
    assert (lab[3] == 255).all() and (lab[:3, :3] == 0).all()
    with pytest.raises(ValueError, match="multiples of 8"):
        SearchTransform(crop=(30, 48))


def test_halves_are_disjoint_and_cover_the_split():
    w, a = split_halves(7, seed=3)
    assert len(w) == 3 and len(a) == 4 and sorted(w + a) == list(range(7))
    assert split_halves(7, seed=3) == (w, a)
    loader = half_loader(list(range(100)), [5, 6, 7], batch_size=2, num_batches=4, seed=0)
    batches = [b.tolist() for b in loader]
    assert len(batches) == 4 and all(set(b) <= {5, 6, 7} for b in batches)


def tiny_search_config(root, **kw):
    supernet = SupernetConfig(
        layers=6, base_channels=2, width_choices=[0.5, 1.0], num_classes=11,
        archs=[ArchSpec("teacher", 1.0, 1.0, False, True), ArchSpec("student", 0.5, 0.5, True, False)],
    )
    base = dict(supernet=supernet, train_data=f"camvid:{root}", epochs=2, iters_per_epoch=1, batch_size=2,
                crop=[64, 64], downsample=1, scales=[1.0])
    base.update(kw)
    return SearchConfig(**base)


def _cost(net, arch):
    return sum(torch.softmax(a, -1)[:, 1:].sum() for a in net.arch[arch].alphas)


def _macs_latency(genotype):  # a MAC-proportional latency model of the derived network
    return count_macs(genotype, (512, 1024)) / 1e7


def test_pretrain_then_search_writes_every_epoch(tmp_path):
    data = write_camvid(tmp_path / "camvid", splits=("train", "val"))
    pre = run_phase(tiny_search_config(data), tmp_path / "pretrain")
    assert [r.epoch for r in pre] == [0, 1] and all(r.arch_loss is None for r in pre)
    arch = json.loads((tmp_path / "pretrain" / "arch.json").read_text())
    initial = np.full((6, 5), np.float32(1e-3))
    assert np.array_equal(np.array(arch["student"]["alpha_0"], dtype=np.float32), initial)  # untouched
    assert pre[1].lr == pytest.approx(0.02 * 0.978)

    cfg = tiny_search_config(data, pretrain=False, epochs=1, lr=0.01, val_data=f"camvid:{data}", val_limit=2,
                             fps_min={"student": 1e6}, fps_max={"student": 2e6})
    found = run_phase(cfg, tmp_path / "search", latency_fn=_cost, genotype_latency=_macs_latency,
                      init_weights=tmp_path / "pretrain" / "weights.safetensors")
    assert found[0].arch_loss is not None and "student" in found[0].latency
    # Scored, derived and saved per architecture; the student is far below its FPS window,
    # so its latency weight doubles for the next epoch.
    assert set(found[0].miou) == {"teacher", "student"} and all(len(m) == 5 for m in found[0].miou.values())
    student = json.loads((tmp_path / "search" / "student.json").read_text())
    assert Genotype.from_dict(student["genotype"]).stem_width == 0.5
    assert (tmp_path / "search" / "teacher.json").is_file()
    assert (tmp_path / "search" / "student.png").stat().st_size > 1000
    assert found[0].latency_weights == {"student": 0.02}
    arch = json.loads((tmp_path / "search" / "arch.json").read_text())
    assert not np.array_equal(np.array(arch["student"]["alpha_0"], dtype=np.float32), initial)
    assert np.array(arch["student"]["ratio_2"]).shape == (4, 2)
    rows = list(csv.DictReader((tmp_path / "search" / "log.csv").open()))
    assert len(rows) == 1 and rows[0]["latency_student"] and rows[0]["latency_teacher"] == ""
    assert float(rows[0]["miou_student_8_32"]) == found[0].miou["student"][3]
    assert float(rows[0]["latency_weight_student"]) == 0.02
    # The saved supernet loads back into a fresh one of the same configuration.
    Supernet(cfg.supernet).load_state_dict(load_file(str(tmp_path / "search" / "weights.safetensors")))
    assert (tmp_path / "search" / "config.yaml").is_file()


@pytest.mark.slow  # 11 search epochs (40 s): the warning needs ten halvings; the adaptation rule itself: tests/search/test_epoch.py
def test_a_window_below_what_accuracy_picks_is_reported_once(tmp_path, capsys):
    data = write_camvid(tmp_path / "camvid", n=4, splits=("train", "val"))
    cfg = tiny_search_config(data, pretrain=False, epochs=11, val_data=f"camvid:{data}", val_limit=1,
                             latency_weights={"student": 0.5}, fps_min={"student": 1e-9}, fps_max={"student": 1e-6})
    records = run_phase(cfg, tmp_path / "search", latency_fn=_cost, genotype_latency=_macs_latency)
    # Every epoch a candidate is above fps_max: the weight halves; the 10th halving (0.5 / 1024)
    # takes it below 1/1000 of where it started, and the user is told once.
    assert [r.latency_weights["student"] for r in records] == [0.5 / 2 ** k for k in range(1, 12)]
    err = capsys.readouterr().err
    assert err.count("latency weight fell to") == 1 and "0.00049 (candidates now" in err


def test_class_count_must_match_the_dataset(tmp_path):
    data = write_camvid(tmp_path / "camvid", n=2)
    cfg = tiny_search_config(data)
    cfg.supernet.num_classes = 19
    with pytest.raises(ConfigError, match="supernet.num_classes: 19, but .* has 11 classes"):
        run_phase(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match="latency_weights"):
        tiny_search_config(data, latency_weights={"nobody": 1.0})


class Interrupt(Exception):
    pass


def _assert_resumed_as_straight(straight, resumed, straight_dir, resumed_dir):
    """The resumed run redid epoch 1 only and ends as the run never stopped: losses, weights, log."""
    assert [r.epoch for r in resumed] == [1]
    assert resumed[0].weight_loss == straight[1].weight_loss and resumed[0].arch_loss == straight[1].arch_loss
    a = load_file(str(straight_dir / "weights.safetensors"))
    b = load_file(str(resumed_dir / "weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (straight_dir / "log.csv").read_text() == (resumed_dir / "log.csv").read_text()


def test_resume_continues_exactly(tmp_path):
    data = write_camvid(tmp_path / "camvid", n=4)
    cfg = tiny_search_config(data, pretrain=False, epochs=2, latency_weights={"student": 0.5})
    straight = run_phase(cfg, tmp_path / "straight", latency_fn=_cost)

    calls = {"n": 0}

    def dies_in_the_second_epoch(net, arch):
        calls["n"] += 1
        if calls["n"] == 2:  # one architecture step per epoch
            raise Interrupt
        return _cost(net, arch)

    with pytest.raises(Interrupt):
        run_phase(cfg, tmp_path / "resumed", latency_fn=dies_in_the_second_epoch)
    resumed = run_phase(cfg, tmp_path / "resumed", latency_fn=_cost, resume=True)
    _assert_resumed_as_straight(straight, resumed, tmp_path / "straight", tmp_path / "resumed")
    # TensorBoard (a test dependency) shows the CSV's numbers, once per epoch, across the interruption.
    rows = list(csv.DictReader((tmp_path / "resumed" / "log.csv").open()))
    scalars = tensorboard_scalars(tmp_path / "resumed" / "tensorboard")
    tags = {"weight_loss": "loss/weight", "arch_loss": "loss/arch", "latency_student": "latency/student",
            "latency_weight_student": "latency_weight/student"}
    for column, tag in tags.items():
        assert [step for step, _ in scalars[tag]] == [0, 1], tag
        assert [v for _, v in scalars[tag]] == pytest.approx([float(r[column]) for r in rows], rel=1e-6)
    assert "latency/teacher" not in scalars  # empty cells are not logged
    with pytest.raises(ConfigError, match=r"other settings for \['lr'\]"):
        run_phase(tiny_search_config(data, pretrain=False, epochs=2, lr=0.5, latency_weights={"student": 0.5}),
                  tmp_path / "resumed", resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        run_phase(cfg, tmp_path / "empty", resume=True)


@pytest.mark.parametrize("pretrain", [True, False])
def test_a_run_stopped_inside_an_epoch_continues_from_its_last_step_exactly(tmp_path, monkeypatch, pretrain):
    """With checkpoints inside epochs (here after every step), a run killed in the middle of its
    second epoch resumes at the step after the last checkpoint and ends bit for bit as a run that
    never stopped: the same weights, losses and log, and no stray checkpoint files."""
    import fasterseg.search.loop as loop

    data = write_camvid(tmp_path / "camvid", n=8)
    cfg = tiny_search_config(data, pretrain=pretrain, epochs=2, iters_per_epoch=2, latency_weights={"student": 0.5},
                             checkpoint_minutes=1e-9)
    straight = run_phase(cfg, tmp_path / "straight", latency_fn=_cost)

    real_step, calls = loop.search_step, {"n": 0}

    def dies_at_the_fourth_step(*args, **kwargs):  # steps 1-2: epoch 0; 3: epoch 1's first; 4: its second
        calls["n"] += 1
        if calls["n"] == 4:
            raise Interrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "search_step", dies_at_the_fourth_step)
    with pytest.raises(Interrupt):
        run_phase(cfg, tmp_path / "resumed", latency_fn=_cost)
    meta = json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())
    assert meta["epoch"] == 0 and meta["partial"]["epoch"] == 1 and meta["partial"]["steps"] == 1
    assert sorted(p.name for p in (tmp_path / "resumed").glob("checkpoint*.safetensors")) == [
        "checkpoint-e0001-s00001.safetensors"]

    resumed = run_phase(cfg, tmp_path / "resumed", latency_fn=_cost, resume=True)
    assert calls["n"] == 5  # only epoch 1's last step was run again
    _assert_resumed_as_straight(straight, resumed, tmp_path / "straight", tmp_path / "resumed")
    assert sorted(p.name for p in (tmp_path / "resumed").glob("checkpoint*.safetensors")) == [
        "checkpoint-e0001.safetensors"]
    assert "partial" not in json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())


def test_a_checkpoint_whose_partial_epoch_does_not_follow_its_last_is_refused(tmp_path):
    from fasterseg.errors import ModelFileError

    data = write_camvid(tmp_path / "camvid", n=8)
    cfg = tiny_search_config(data, epochs=1, iters_per_epoch=2, checkpoint_minutes=1e-9)
    run_phase(cfg, tmp_path / "run")
    meta_path = tmp_path / "run" / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    meta["partial"] = {"epoch": 3, "steps": 1, "weight_loss_sum": 1.0, "arch_loss_sum": 0.0, "latency": {}}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="'partial' names epoch 3 after 1 steps, but the last finished epoch is 0"):
        run_phase(tiny_search_config(data, epochs=2, iters_per_epoch=2, checkpoint_minutes=1e-9), tmp_path / "run",
                  resume=True)
    with pytest.raises(ConfigError, match="checkpoint_minutes"):
        tiny_search_config(data, checkpoint_minutes=-1)


def test_iterations_per_epoch_follow_the_official_rule():
    # Cityscapes: 2975 training images, halves of 1487 and 1488.
    assert iterations_per_epoch(SearchConfig(batch_size=3), 1487) == 495  # pretraining
    assert iterations_per_epoch(SearchConfig(batch_size=2), 1487) == 743  # search
    assert iterations_per_epoch(SearchConfig(batch_size=2), 183) == 400  # CamVid: at least 400
    assert iterations_per_epoch(SearchConfig(iters_per_epoch=7), 1487) == 7


def test_search_data_smaller_than_the_crop_and_the_network_is_searched_and_scored(tmp_path):
    """Training images smaller than the crop are padded (ignored labels), validation images smaller
    than the supernet's smallest input are padded inside it: the epoch ends with scores."""
    torch.set_num_threads(1)
    data = write_camvid(tmp_path / "camvid", n=4, size=(24, 30), splits=("train", "val"))
    cfg = tiny_search_config(data, pretrain=False, epochs=1, val_data=f"camvid:{data}", val_limit=2,
                             fps_min={"student": 1e6}, fps_max={"student": 2e6})
    records = run_phase(cfg, tmp_path / "small", latency_fn=_cost, genotype_latency=_macs_latency)
    assert set(records[0].miou) == {"teacher", "student"}
    assert all(0.0 <= v <= 1.0 for scores in records[0].miou.values() for v in scores)


def test_search_settings_the_supernet_cannot_run_fail_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match=r"crop: .* multiples of 8"):
        tiny_search_config(tmp_path, crop=[36, 64])
    assert tiny_search_config(tmp_path, crop=[32, 64]).crop == [32, 64]  # padded to 64 inside the supernet
    with pytest.raises(DatasetError):
        run_phase(tiny_search_config(tmp_path / "nowhere"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_search_reads_every_named_split_and_scores_the_named_one(tmp_path):
    """train_split [a, b] is one dataset (2 + 2 frames halve into 2 weight and 2 architecture
    frames, where either split alone has too few for a batch of 2 in each half); val_split
    names the scored split, and a missing one is refused by name before the run folder exists."""
    data = tmp_path / "camvid"
    write_camvid(data, n=2, splits=("train", "val", "test"))
    two = dict(train_split=["train", "test"], val_data=f"camvid:{data}", val_split="val", val_limit=1, epochs=1)
    with pytest.raises(ConfigError, match="batch_size"):  # one split alone: a half of 1 frame
        run_phase(tiny_search_config(data, **{**two, "train_split": "train"}), tmp_path / "one")
    records = run_phase(tiny_search_config(data, **two), tmp_path / "both")
    assert len(records) == 1 and records[0].miou["teacher"]
    with pytest.raises(DatasetError, match="nowhere"):
        run_phase(tiny_search_config(data, **{**two, "val_split": "nowhere"}), tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
    with pytest.raises(ConfigError, match="train_split"):
        tiny_search_config(data, train_split=[])


def test_a_resumed_phase_may_be_lengthened_and_scored_otherwise(tmp_path):
    data = write_camvid(tmp_path / "camvid", n=4, splits=("train", "val"))
    scored = dict(val_data=f"camvid:{data}", val_limit=2)
    straight = run_phase(tiny_search_config(data, epochs=2, **scored), tmp_path / "straight")
    run_phase(tiny_search_config(data, epochs=1, **scored), tmp_path / "longer")
    # One more epoch on resume is the two-epoch run (the rate decays per epoch whatever the total);
    # batch-norm re-estimation before scoring changes the scores, not the training.
    longer = run_phase(tiny_search_config(data, epochs=2, bn_batches=1, **scored), tmp_path / "longer", resume=True)
    assert [r.epoch for r in longer] == [1] and longer[0].weight_loss == straight[1].weight_loss
    a = load_file(str(tmp_path / "straight" / "weights.safetensors"))
    b = load_file(str(tmp_path / "longer" / "weights.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if "running" not in k and "num_batches" not in k)
    assert any(not torch.equal(a[k], b[k]) for k in a if "running_mean" in k)  # re-estimated statistics
    saved = (tmp_path / "longer" / "config.yaml").read_text()
    assert "epochs: 2" in saved and "bn_batches: 1" in saved  # the run folder says what ran
    with pytest.raises(ConfigError, match=r"other settings for \['crop'\].*only epochs"):
        run_phase(tiny_search_config(data, epochs=3, crop=[32, 32], **scored), tmp_path / "longer", resume=True)
