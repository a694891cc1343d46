"""Cityscapes submission export: train ids in, label-id PNGs named for the server out, zipped."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from fasterseg.data.registry import build_dataset
from fasterseg.errors import EvaluationError
from fasterseg.evaluate.submission import export_submission, export_submission_dir
from tests.evaluate.official import official_evaluate


def test_export_round_trips_through_the_official_evaluator(synth_root, tmp_path):
    ds = build_dataset(f"synth:{synth_root}", "val")
    out = export_submission(((ds.name(i), ds.load_label(i)) for i in range(len(ds))), tmp_path / "sub.zip")
    with zipfile.ZipFile(out) as z:
        members = sorted(z.namelist())
        assert members == sorted(f"synth/{ds.name(i)}_leftImg8bit.png" for i in range(len(ds)))
        z.extractall(tmp_path / "unzipped")
        first = np.asarray(Image.open(io.BytesIO(z.read(members[0]))))
    # label ids where the ground truth is evaluated; 'unlabeled' (0) where it is ignored
    ids = ds.load_label_ids(0)
    keep = ds.load_label(0) != 255
    assert (first[keep] == ids[keep]).all() and (first[~keep] == 0).all()
    preds = [tmp_path / "unzipped" / m for m in members]
    ref = official_evaluate(preds, [ds.label_path(i) for i in range(len(ds))])
    assert ref["averageScoreClasses"] == pytest.approx(1.0) and ref["averageScoreInstClasses"] == pytest.approx(1.0)


def test_export_errors_and_no_partial_zip(tmp_path):
    target = tmp_path / "sub.zip"
    with pytest.raises(EvaluationError, match="value 19 is not a Cityscapes train id"):
        export_submission([("bonn_000000_000001", np.array([[0, 19]], np.uint8))], target)
    with pytest.raises(EvaluationError, match="'frame7' is not a Cityscapes frame name"):
        export_submission([("frame7", np.zeros((2, 2), np.uint8))], target)
    with pytest.raises(EvaluationError, match="no predictions"):
        export_submission([], target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_export_from_a_folder_of_train_id_pngs(tmp_path):
    d = tmp_path / "preds"
    d.mkdir()
    Image.fromarray(np.array([[0, 13], [18, 255]], np.uint8)).save(d / "bonn_000000_000001_leftImg8bit.png")
    out = export_submission_dir(d, tmp_path / "s.zip")
    with zipfile.ZipFile(out) as z:
        arr = np.asarray(Image.open(io.BytesIO(z.read("bonn/bonn_000000_000001_leftImg8bit.png"))))
    assert arr.tolist() == [[7, 26], [33, 0]]
