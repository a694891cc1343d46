"""The synthetic street scenes: deterministic per seed, every class, consistent instances."""

import hashlib
import time

import numpy as np
import pytest

from fasterseg.data.labels import ID_TO_LABEL, id_to_train_table
from fasterseg.data.registry import build_dataset
from fasterseg.data.synth import SynthConfig, generate, render_scene


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for root, seed in ((a, 5), (b, 5), (c, 6)):
        generate(SynthConfig(out=root, train=2, val=1, size=(64, 128), seed=seed), progress=False)
    assert len(list(a.rglob("*.png"))) == 3 * 4  # image, labelIds, instanceIds, colour per scene
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_every_evaluated_class_and_instances_in_four_scenes(synth_root):
    ds = build_dataset(f"synth:{synth_root}", "train")
    assert len(ds) == 4
    seen_train, seen_instance_classes = set(), set()
    for i in range(len(ds)):
        image, label = ds[i]
        assert image.dtype == np.uint8 and image.shape == (128, 256, 3) and label.shape == (128, 256)
        ids, inst = ds.load_label_ids(i), ds.load_instances(i)
        seen_train |= set(np.unique(label).tolist()) - {255}
        # each instance lies on pixels of its own class
        for k in np.unique(inst[inst > 1000]):
            assert (ids[inst == k] == k // 1000).all()
            seen_instance_classes.add(ID_TO_LABEL[int(k) // 1000].name)
        # pixels of classes with instances either carry an instance id or the class id (a group)
        stuff = inst <= 1000
        assert (inst[stuff] == ids[stuff]).all()
    assert seen_train == set(range(19))
    assert {"person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"} <= seen_instance_classes


def test_imbalance_and_colour_does_not_give_the_label(synth_root):
    """Large classes dominate, small ones are rare; one class spans many colours."""
    ds = build_dataset(f"synth:{synth_root}", "train")
    counts = np.zeros(19)
    road_colours = []
    for i in range(len(ds)):
        image, label = ds[i]
        counts += np.bincount(label[label < 255], minlength=19)
        road_colours.append(image[label == 0].std(0).mean())
    share = counts / counts.sum()
    assert share[0] > 0.15 and share[2] + share[8] > 0.15  # road; building + vegetation
    assert share[[6, 12, 17, 18]].max() < 0.02  # traffic light, rider, motorcycle, bicycle
    assert min(road_colours) > 3  # textured, lit and noised: not one colour per class


def test_a_scene_alone_equals_the_same_scene_in_a_set(synth_root):
    """Each scene has its own random stream: rendering one does not depend on the others."""
    ds = build_dataset(f"synth:{synth_root}", "val")
    image, label_ids, inst = render_scene(3, "val", 2, (128, 256))  # synth_root: seed 3, 128x256
    assert (image == ds[2][0]).all()
    assert (id_to_train_table()[label_ids] == ds[2][1]).all()
    assert (inst == ds.load_instances(2)).all()


def test_a_colour_lookup_cannot_label_the_scenes(synth_root):
    """The most likely label per quantised colour, learnt on train, labels val only partly."""
    def quantise(img):
        return (img[..., 0] // 16).astype(np.int64) * 256 + (img[..., 1] // 16) * 16 + img[..., 2] // 16

    counts = np.zeros((4096, 256), np.int64)
    train = build_dataset(f"synth:{synth_root}", "train")
    for i in range(len(train)):
        image, label = train[i]
        np.add.at(counts, (quantise(image).ravel(), label.ravel()), 1)
    counts[:, 255] = 0
    lookup = counts.argmax(1)
    val = build_dataset(f"synth:{synth_root}", "val")
    hits = total = 0
    for i in range(len(val)):
        image, label = val[i]
        keep = label != 255
        hits += int((lookup[quantise(image)][keep] == label[keep]).sum())
        total += int(keep.sum())
    assert 0.2 < hits / total < 0.8


@pytest.mark.slow
def test_two_hundred_scenes_at_256x512_in_under_a_minute(tmp_path):
    start = time.perf_counter()
    generate(SynthConfig(out=tmp_path, train=200, val=0, size=(256, 512)), progress=False)
    assert time.perf_counter() - start < 60


def test_a_smaller_run_into_a_used_folder_is_refused(tmp_path):
    from fasterseg.errors import FasterSegError

    generate(SynthConfig(out=tmp_path, train=2, val=0, size=(48, 96)), progress=False)
    generate(SynthConfig(out=tmp_path, train=2, val=0, size=(48, 96)), progress=False)  # same scenes: fine
    with pytest.raises(FasterSegError, match="synth_000000_000001_leftImg8bit.png: .* already holds scenes"):
        generate(SynthConfig(out=tmp_path, train=1, val=0, size=(48, 96)), progress=False)
