"""``fasterseg predict`` end to end on real files: images, a corrupt file, videos, submission."""

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from fasterseg.cli import main
from fasterseg.infer.palette import generated_palette, palette_for, train_to_label_id_table
from fasterseg.infer.predictor import Predictor
from fasterseg.infer.views import window_starts
from fasterseg.modelfile import load_model


def by_hand(model, image: np.ndarray) -> np.ndarray:
    """Normalise as the model file says, run the plain model, argmax: the expected labels."""
    mean, std = np.array(model.meta.mean), np.array(model.meta.std)
    x = (image.astype(np.float64) / 255 - mean) / std
    x = torch.from_numpy(x.transpose(2, 0, 1)[None]).float()
    with torch.no_grad():
        return model(x).argmax(1)[0].numpy()


def random_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(random_image(64, 96, 0)).save(root / "berlin_000000_000019_leftImg8bit.png")
    Image.fromarray(random_image(64, 96, 1)).save(root / "sub" / "second.png")
    Image.fromarray(random_image(50, 70, 2)).save(root / "third.bmp")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (root / "notes.txt").write_text("not an input")
    return root


def test_folder_with_a_corrupt_file_processes_the_rest_and_reports_it(cityscapes_tiny_model, folder, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["predict", "--model", cityscapes_tiny_model, "--input", str(folder), "--out", str(out),
               "--outputs", "labels,color,overlay,label_ids", "--batch-size", "2", "--label-path", "exact"])
    err = capsys.readouterr().err
    assert rc == 1  # one input failed
    assert "corrupt.png" in err and "notes.txt" not in err.replace("ignored 1 file", "")
    assert "ignored 1 file(s)" in err
    model = load_model(cityscapes_tiny_model)
    table = train_to_label_id_table(model.meta)
    for name, path in [("berlin_000000_000019_leftImg8bit", "berlin_000000_000019_leftImg8bit.png"),
                       ("sub/second", "sub/second.png"), ("third", "third.bmp")]:
        image = np.asarray(Image.open(folder / path).convert("RGB"))
        labels = np.asarray(Image.open(out / "labels" / f"{name}.png"))
        np.testing.assert_array_equal(labels, by_hand(model, image))
        np.testing.assert_array_equal(np.asarray(Image.open(out / "label_ids" / f"{name}.png")), table[labels])
        color = np.asarray(Image.open(out / "color" / f"{name}.png"))
        np.testing.assert_array_equal(color, palette_for(model.meta)[labels])
        assert np.asarray(Image.open(out / "overlay" / f"{name}.png")).shape == image.shape
    assert not (out / "labels" / "corrupt.png").exists()


def test_missing_inputs_count_as_failures_and_the_rest_still_runs(cityscapes_tiny_model, folder, tmp_path, capsys):
    rc = main(["predict", "--model", cityscapes_tiny_model, "--input", str(folder / "third.bmp"),
               str(tmp_path / "absent.png"), str(tmp_path / "nope*.jpg"), "--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "absent.png" in err and "nope*.jpg" in err
    assert (tmp_path / "out" / "labels" / "third.png").exists()


def test_globs_select_files_by_pattern(cityscapes_tiny_model, folder, tmp_path):
    rc = main(["predict", "--model", cityscapes_tiny_model, "--input", str(folder / "**" / "s*.png"),
               "--out", str(tmp_path / "out"), "--outputs", "labels"])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out" / "labels").iterdir()) == ["second.png"]


def test_submission_zip_holds_label_ids_named_for_the_server(cityscapes_tiny_model, folder, tmp_path):
    zip_path = tmp_path / "submission.zip"
    (folder / "aachen").mkdir()  # the test split's layout: one folder per city
    Image.fromarray(random_image(64, 96, 3)).save(folder / "aachen" / "aachen_000000_000019_leftImg8bit.png")
    (folder / "zurich").mkdir()
    Image.fromarray(random_image(64, 96, 4)).save(folder / "zurich" / "berlin_000000_000019_leftImg8bit.jpg")
    rc = main(["predict", "--model", cityscapes_tiny_model, "--input", str(folder), "--out", str(tmp_path / "out"),
               "--submission", str(zip_path)])
    # Only Cityscapes frame names can be submitted, each frame once: "second", "third", the corrupt file
    # and the later (in path order) of the two berlin frames fail before the model runs: no outputs.
    assert rc == 4  # the exit status counts the failed inputs
    labels_written = sorted(str(p.relative_to(tmp_path / "out" / "labels")) for p in (tmp_path / "out" / "labels").rglob("*.png"))
    assert labels_written == ["aachen/aachen_000000_000019_leftImg8bit.png", "berlin_000000_000019_leftImg8bit.png"]
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
        assert names == ["aachen/aachen_000000_000019_leftImg8bit.png", "berlin/berlin_000000_000019_leftImg8bit.png"]
        with archive.open("berlin/berlin_000000_000019_leftImg8bit.png") as f:
            ids = np.asarray(Image.open(f))
    labels = np.asarray(Image.open(tmp_path / "out" / "labels" / "berlin_000000_000019_leftImg8bit.png"))
    assert ids.dtype == np.uint8 and ids.shape == labels.shape
    # Train ids -> Cityscapes label ids, from the dataset definition: road 0 -> 7, sky 10 -> 23, bicycle 18 -> 33.
    table = {0: 7, 1: 8, 2: 11, 10: 23, 13: 26, 18: 33}
    for train_id, label_id in table.items():
        assert (ids[labels == train_id] == label_id).all()
    assert set(np.unique(ids)) <= {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33}




def test_video_gives_an_overlay_video_with_every_frame(cityscapes_tiny_model, tmp_path):
    import cv2

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(5):
        writer.write(random_image(64, 96, i))
    writer.release()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    out = tmp_path / "out"
    rc = main(["predict", "--model", cityscapes_tiny_model, "--input", str(video), str(broken), "--out", str(out),
               "--batch-size", "2"])
    assert rc == 1
    capture = cv2.VideoCapture(str(out / "video" / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (96, 64)
    capture.release()
    assert not (out / "video" / "broken.mp4").exists()


def test_batches_of_mixed_sizes_give_the_per_image_result(cityscapes_tiny_model):
    model = load_model(cityscapes_tiny_model)
    images = [random_image(64, 96, 0), random_image(64, 96, 1), random_image(40, 60, 2), random_image(64, 96, 3)]
    got = Predictor(model, batch_size=3).predict(images)
    for image, labels in zip(images, got):
        np.testing.assert_array_equal(labels, by_hand(model, image))


def test_tiling_with_one_window_equals_the_whole_image_and_covers_every_pixel(cityscapes_tiny_model):
    model = load_model(cityscapes_tiny_model)
    image = random_image(96, 160, 0)
    whole = Predictor(model).predict([image])[0]
    assert (Predictor(model, tile=(96, 160)).predict([image])[0] == whole).all()
    tiled = Predictor(model, tile=(64, 64), tile_overlap=0.5).predict([image])[0]
    assert tiled.shape == whole.shape


def test_window_starts_cover_the_length_flush_at_the_end():
    assert window_starts(100, 40, 30) == [0, 30, 60]
    assert window_starts(100, 40, 20) == [0, 20, 40, 60]
    assert window_starts(30, 40, 20) == [0]


def test_palettes():
    assert tuple(palette_for(load_model_meta(19))[0]) == (128, 64, 128)  # road
    colours = generated_palette(40)
    assert len({tuple(c) for c in colours}) == 40 and tuple(colours[0]) != (0, 0, 0)
    custom = load_model_meta(3, palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert palette_for(custom).tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def load_model_meta(num_classes, **extra):
    from fasterseg.data.labels import CITYSCAPES_CLASSES
    from fasterseg.modelfile import ModelMeta
    from tests.nets.test_network import tiny_genotype

    names = CITYSCAPES_CLASSES if num_classes == 19 else tuple(f"c{i}" for i in range(num_classes))
    return ModelMeta(genotype=tiny_genotype(num_classes=num_classes), class_names=names, extra=extra)


def test_label_ids_need_a_cityscapes_model():
    from fasterseg.errors import FasterSegError

    with pytest.raises(FasterSegError, match="19 Cityscapes classes"):
        train_to_label_id_table(load_model_meta(5))
