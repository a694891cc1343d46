"""Dataset readers behind one spec string: Cityscapes layout, BDD100K, YAML folder, CamVid."""

import shutil

import numpy as np
import pytest
from PIL import Image

from fasterseg.errors import ConfigError
from fasterseg.errors import DatasetError
from fasterseg.data.registry import BUILDERS, build_dataset


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_cityscapes_layout_maps_label_ids_to_train_ids(tmp_path):
    gt = tmp_path / "gtFine" / "val" / "bonn"
    ids = np.array([[7, 8, 0], [26, 33, 29]], np.uint8)  # road, sidewalk, unlabeled / car, bicycle, caravan
    _png(tmp_path / "leftImg8bit" / "val" / "bonn" / "bonn_000001_000002_leftImg8bit.png", np.zeros((2, 3, 3), np.uint8))
    _png(gt / "bonn_000001_000002_gtFine_labelIds.png", ids)
    _png(gt / "bonn_000001_000002_gtFine_instanceIds.png", np.array([[7, 8, 0], [26000, 33000, 29000]], np.uint16))
    ds = build_dataset(f"cityscapes:{tmp_path}", "val")
    image, label = ds[0]
    assert label.tolist() == [[0, 1, 255], [13, 18, 255]]
    assert ds.name(0) == "bonn_000001_000002"
    assert ds.info.num_classes == 19 and ds.info.ignore_index == 255
    assert ds.load_instances(0)[1].tolist() == [26000, 33000, 29000]


def test_cityscapes_bad_input_names_the_file(synth_root, tmp_path):
    root = tmp_path / "cs"
    shutil.copytree(synth_root, root)
    label = sorted((root / "gtFine" / "val").rglob("*_labelIds.png"))[0]
    ids = np.asarray(Image.open(label)).copy()
    ids[0, 0] = 40
    Image.fromarray(ids).save(label)
    ds = build_dataset(f"cityscapes:{root}", "val")
    with pytest.raises(DatasetError, match=rf"{label.name}.*label id 40 is outside"):
        ds[0]
    label.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DatasetError, match=rf"{label.name}: cannot decode"):
        ds[0]
    label.unlink()
    with pytest.raises(DatasetError, match=rf"its ground truth .*{label.name} does not exist"):
        build_dataset(f"cityscapes:{root}", "val")
    (root / "leftImg8bit" / "empty").mkdir()
    with pytest.raises(DatasetError, match="split 'empty' is empty"):
        build_dataset(f"cityscapes:{root}", "empty")
    with pytest.raises(DatasetError, match="no such folder"):
        build_dataset(f"cityscapes:{root}", "test")


def test_bdd100k_layout(tmp_path):
    _png(tmp_path / "images" / "10k" / "val" / "b1.png", np.zeros((2, 2, 3), np.uint8))
    _png(tmp_path / "labels" / "sem_seg" / "masks" / "val" / "b1.png", np.array([[0, 18], [255, 13]], np.uint8))
    ds = build_dataset(f"bdd100k:{tmp_path}", "val")
    assert ds[0][1].tolist() == [[0, 18], [255, 13]] and ds.info.name == "bdd100k" and ds.name(0) == "b1"
    _png(tmp_path / "labels" / "sem_seg" / "masks" / "val" / "b1.png", np.array([[0, 19], [255, 13]], np.uint8))
    with pytest.raises(DatasetError, match="b1.png: label value 19 is neither a class"):
        ds[0]


def _folder(tmp_path, yaml_text, label):
    (tmp_path / "dataset.yaml").write_text(yaml_text)
    _png(tmp_path / "images" / "train" / "a.jpg", np.full((2, 2, 3), 90, np.uint8))
    _png(tmp_path / "labels" / "train" / "a.png", label)
    return build_dataset(f"folder:{tmp_path}", "train")


def test_folder_dataset_from_yaml_index_masks(tmp_path):
    ds = _folder(tmp_path, "name: cracks\nclasses: [background, crack]\nignore_index: 9\n",
                 np.array([[0, 1], [9, 1]], np.uint8))
    assert ds.info.class_names == ("background", "crack") and ds.info.ignore_index == 9 and ds.info.name == "cracks"
    assert ds[0][1].tolist() == [[0, 1], [9, 1]]
    _png(tmp_path / "labels" / "train" / "a.png", np.array([[0, 2], [9, 1]], np.uint8))
    with pytest.raises(DatasetError, match="a.png: label value 2"):
        ds[0]


def test_folder_dataset_colour_masks(tmp_path):
    yaml_text = ("classes: [sky, tree]\ncolors: [[0, 0, 255], [0, 255, 0]]\nlabel_format: color\n"
                 "ignore_color: [0, 0, 0]\n")
    rgb = np.array([[[0, 0, 255], [0, 255, 0]], [[0, 0, 0], [0, 255, 0]]], np.uint8)
    ds = _folder(tmp_path, yaml_text, rgb)
    assert ds[0][1].tolist() == [[0, 1], [255, 1]]
    rgb[0, 0] = (1, 2, 3)
    _png(tmp_path / "labels" / "train" / "a.png", rgb)
    with pytest.raises(DatasetError, match=r"colour \(1, 2, 3\) is not a class colour"):
        ds[0]


def test_folder_yaml_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="classes"):
        _folder(tmp_path, "name: x\n", np.zeros((2, 2), np.uint8))
    with pytest.raises(ConfigError, match="colors"):
        _folder(tmp_path, "classes: [a, b]\ncolors: [[1, 2, 3]]\n", np.zeros((2, 2), np.uint8))
    with pytest.raises(ConfigError, match="unknown key"):
        _folder(tmp_path, "classes: [a]\nclases: [b]\n", np.zeros((2, 2), np.uint8))


def test_spec_errors():
    assert {"camvid", "cityscapes", "synth", "bdd100k", "folder"} <= set(BUILDERS)
    with pytest.raises(DatasetError, match="KIND:PATH"):
        build_dataset("cityscapes", "val")
    with pytest.raises(DatasetError, match="unknown kind 'kitti'"):
        build_dataset("kitti:/x", "val")
    with pytest.raises(DatasetError, match="does not exist"):
        build_dataset("cityscapes:/no/such/dir", "val")


def test_camvid_from_shared(shared):
    ds = build_dataset(f"camvid:{shared / 'data' / 'camvid'}", "val")
    image, label = ds[0]
    assert len(ds) == 101 and image.shape == (360, 480, 3) and label.max() <= 255
    assert set(np.unique(label).tolist()) <= set(range(11)) | {255}
