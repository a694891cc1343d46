"""``fasterseg eval`` on prediction folders: matching by name, bad input, and every output."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from fasterseg.cli import main
from fasterseg.data.registry import build_dataset
from fasterseg.errors import EvaluationError
from fasterseg.evaluate.predictions import evaluate_predictions, match_predictions


@pytest.fixture()
def perfect(synth_root, tmp_path):
    """Predictions equal to the ground truth label ids, one per val image."""
    ds = build_dataset(f"synth:{synth_root}", "val")
    out = tmp_path / "pred"
    out.mkdir()
    for i in range(len(ds)):
        Image.fromarray(ds.load_label_ids(i)).save(out / f"{ds.name(i)}_leftImg8bit.png")
    return ds, out


def test_perfect_predictions_score_one(perfect):
    ds, pred_dir = perfect
    r = evaluate_predictions(pred_dir, ds, progress=False)
    for name, v in r.averages.items():
        assert v == pytest.approx(1.0), name
    assert r.pixel_accuracy == 1.0 and r.images == len(ds)


def test_missing_extra_doubled_predictions(perfect):
    ds, pred_dir = perfect
    names = [ds.name(i) for i in range(len(ds))]
    first = sorted(pred_dir.iterdir())[0]
    shutil.copy(first, pred_dir / "unrelated.png")
    with pytest.raises(EvaluationError, match="unrelated.png: prediction matches no ground-truth image"):
        match_predictions(pred_dir, names)
    (pred_dir / "unrelated.png").unlink()
    shutil.copy(first, pred_dir / f"{names[0]}_other.png")
    with pytest.raises(EvaluationError, match=f"a second prediction for '{names[0]}'"):
        match_predictions(pred_dir, names)
    (pred_dir / f"{names[0]}_other.png").unlink()
    first.unlink()
    with pytest.raises(EvaluationError, match=f"no prediction for '{names[0]}'"):
        match_predictions(pred_dir, names)


@pytest.mark.parametrize("case", ["size", "value", "corrupt", "rgb"])
def test_bad_prediction_files_are_named(perfect, case):
    ds, pred_dir = perfect
    path = sorted(pred_dir.iterdir())[1]
    ids = np.asarray(Image.open(path))
    if case == "size":
        Image.fromarray(ids[:-1]).save(path)
        message = f"{path.name}: prediction is {ids.shape[0] - 1}x{ids.shape[1]} \\(height x width\\) but its ground truth is"
    elif case == "value":
        bad = ids.copy()
        bad[5, 5] = 34
        Image.fromarray(bad).save(path)
        message = f"{path.name}: value 34 is not a Cityscapes label id"
    elif case == "corrupt":
        path.write_bytes(path.read_bytes()[:60])
        message = f"{path.name}: cannot decode prediction"
    else:
        Image.fromarray(np.stack([ids] * 3, -1)).save(path)
        message = f"{path.name}: predictions must be single-channel"
    with pytest.raises(EvaluationError, match=message):
        evaluate_predictions(pred_dir, ds, progress=False)


def test_eval_command_writes_table_json_csv_plots(perfect, synth_root, tmp_path, capsys):
    ds, pred_dir = perfect
    out = tmp_path / "out"
    rc = main(["eval", "--pred-dir", str(pred_dir), "--data", f"synth:{synth_root}", "--split", "val",
               "--json", str(out / "r.json"), "--csv", str(out / "r.csv"), "--plots", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    for section in ("Average results", "Class results", "Category results", "IoU Classes | 100 |",
                    "person | 100 | 100 |", "flat | 100 | - |"):
        assert section in text
    data = json.loads((out / "r.json").read_text())
    assert set(data["average"]) >= {"IoU Classes", "iIoU Classes", "IoU Categories", "iIoU Categories"}
    assert data["classes"]["car"] == {"IoU": 1.0, "iIoU": 1.0} and data["classes"]["road"]["iIoU"] is None
    assert data["categories"]["vehicle"]["iIoU"] == 1.0
    rows = list(csv.DictReader((out / "r.csv").open()))
    assert {"level": "class", "name": "car", "metric": "iIoU", "value": "1.0"} in rows
    for png in ("class_iou.png", "confusion.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_command_json_to_stdout_and_errors_in_one_line(perfect, synth_root, capsys):
    ds, pred_dir = perfect
    assert main(["eval", "--pred-dir", str(pred_dir), "--data", f"synth:{synth_root}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["average"]["IoU Classes"] == 1.0
    sorted(pred_dir.iterdir())[0].unlink()
    assert main(["eval", "--pred-dir", str(pred_dir), "--data", f"synth:{synth_root}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no prediction for" in err[0]


def test_eval_on_camvid_class_indices(shared, tmp_path, capsys):
    """A dataset without instances: IoU, pixel and mean accuracy; prediction = label shifted by one row."""
    camvid = shared / "data" / "camvid"
    ds = build_dataset(f"camvid:{camvid}", "val")
    pred_dir = tmp_path / "camvid_pred"
    pred_dir.mkdir()
    labels = []
    for i in range(3):
        label = ds.load_label(i)
        pred = np.roll(np.where(label == 255, 0, label), 1, axis=0).astype(np.uint8)
        Image.fromarray(pred).save(pred_dir / f"{ds.name(i)}.png")
        labels.append((pred, label))
    # only the first three images of the list are predicted: evaluate exactly those
    ds.pairs = ds.pairs[:3]
    r = evaluate_predictions(pred_dir, ds, progress=False)
    pred = np.concatenate([p.ravel() for p, _ in labels])
    gt = np.concatenate([g.ravel() for _, g in labels])
    keep = gt != 255
    assert r.pixel_accuracy == pytest.approx((pred[keep] == gt[keep]).mean())
    assert set(r.averages) == {"IoU Classes", "Pixel Accuracy", "Mean Accuracy"}


def test_train_id_predictions_through_the_command(synth_root, tmp_path, capsys):
    from fasterseg.data.labels import id_to_train_table

    ds = build_dataset(f"synth:{synth_root}", "val")
    out = tmp_path / "train_ids"
    out.mkdir()
    for i in range(len(ds)):
        Image.fromarray(id_to_train_table()[ds.load_label_ids(i)]).save(out / f"{ds.name(i)}.png")
    assert main(["eval", "--pred-dir", str(out), "--data", f"synth:{synth_root}", "--ids", "train", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["average"]["iIoU Categories"] == 1.0
    # read as label ids (the default), the ignore value 255 of train ids is outside the label table
    assert main(["eval", "--pred-dir", str(out), "--data", f"synth:{synth_root}", "--json"]) == 1
    assert "value 255 is not a Cityscapes label id" in capsys.readouterr().err


def test_names_match_the_longest_prefix(tmp_path):
    for stem in ("a_1_pred", "a_pred", "a_1_2"):
        (tmp_path / f"{stem}.png").write_bytes(b"")
    with pytest.raises(EvaluationError, match="a second prediction for 'a_1'"):
        match_predictions(tmp_path, ["a", "a_1"])
    (tmp_path / "a_1_2.png").unlink()
    assert [p.name for p in match_predictions(tmp_path, ["a", "a_1"])] == ["a_pred.png", "a_1_pred.png"]


def test_plain_dataset_table_hand_computed():
    from fasterseg.data.base import DatasetInfo
    from fasterseg.evaluate.report import format_table
    from fasterseg.evaluate.scorer import SegmentationScorer

    info = DatasetInfo(name="two", class_names=("bg", "fg"), palette=((0, 0, 0), (255, 255, 255)))
    s = SegmentationScorer(info)
    s.update(np.array([[0, 1, 1, 0]]), np.array([[0, 1, 0, 255]]))
    r = s.result()
    # bg: tp 1, fn 1 -> IoU 1/2, acc 1/2; fg: tp 1, fp 1 -> IoU 1/2, acc 1
    assert r.class_iou == {"bg": 0.5, "fg": 0.5} and r.class_accuracy == {"bg": 0.5, "fg": 1.0}
    assert r.pixel_accuracy == pytest.approx(2 / 3) and r.mean_accuracy == 0.75
    table = format_table(r)
    assert "IoU Classes | 50 |" in table and "Pixel Accuracy | 66.6667 |" in table and "fg | 50 | 100 |" in table
    with pytest.raises(EvaluationError, match="value 2 is not a class index of two"):
        s.update(np.array([2]), np.array([0]))


def test_score_dataset_matches_the_folder_evaluation(perfect):
    """The shared loop (what model evaluation uses) and the folder path agree."""
    from fasterseg.data.labels import id_to_train_table
    from fasterseg.evaluate.scorer import score_dataset

    ds, pred_dir = perfect

    def shift(i: int) -> np.ndarray:
        return np.roll(id_to_train_table()[ds.load_label_ids(i)], 2, axis=1)

    for i in range(len(ds)):
        Image.fromarray(shift(i)).save(pred_dir / f"{ds.name(i)}_leftImg8bit.png")
    a = score_dataset(shift, ds)
    b = evaluate_predictions(pred_dir, ds, ids="train", progress=False)
    assert a.averages == b.averages and 0.3 < a.averages["iIoU Classes"] < 1


def test_what_predict_writes_is_what_eval_scores(synth_root, tmp_path, capsys):
    """README's two commands as written: `predict` into a folder, then `eval --pred-dir` on that
    folder, scores what `eval --model` scores (through labels/, train ids; label_ids/ with --ids label)."""
    from tests.infer.conftest import tiny_model_file

    model = tiny_model_file(tmp_path / "m.safetensors")
    images = synth_root / "leftImg8bit" / "val"
    preds = tmp_path / "preds"
    assert main(["predict", "--model", model, "--input", str(images), "--out", str(preds), "--label-ids"]) == 0
    assert (preds / "color").is_dir() and (preds / "labels").is_dir() and (preds / "label_ids").is_dir()
    capsys.readouterr()

    def miou(*args):
        out = tmp_path / "r.json"
        assert main(["eval", *args, "--data", f"synth:{synth_root}", "--split", "val", "--json", str(out)]) == 0
        return json.loads(out.read_text())["average"]["IoU Classes"]

    reference = miou("--model", model, "--label-path", "auto")  # predict's label path (eval's default is exact)
    assert miou("--pred-dir", str(preds)) == pytest.approx(reference, abs=1e-9)
    assert "labels (train ids" in capsys.readouterr().err
    assert miou("--pred-dir", str(preds), "--ids", "label") == pytest.approx(reference, abs=1e-9)
    assert "label_ids (label ids" in capsys.readouterr().err
    shutil.rmtree(preds / "label_ids")
    assert main(["eval", "--pred-dir", str(preds), "--data", f"synth:{synth_root}", "--ids", "label"]) == 1
    assert "without label_ids/" in capsys.readouterr().err


def test_train_ids_scored_as_label_ids_are_warned_about(perfect, capsys):
    ds, pred_dir = perfect
    from fasterseg.data.labels import id_to_train_table

    table = id_to_train_table()
    for path in pred_dir.iterdir():  # the same maps as train ids, as a network predicts them (no ignore)
        train = table[np.asarray(Image.open(path))]
        Image.fromarray(np.where(train == 255, 0, train).astype(np.uint8)).save(path)
    assert main(["eval", "--pred-dir", str(pred_dir), "--data", f"synth:{ds.root}", "--split", "val"]) == 0
    assert "if the folder holds train ids, pass --ids train" in capsys.readouterr().err
    assert main(["eval", "--pred-dir", str(pred_dir), "--data", f"synth:{ds.root}", "--split", "val", "--ids", "train"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_eval_outputs_aimed_at_what_it_scores_are_refused(perfect, capsys):
    """--json / --csv / --plots on a prediction or a label file would destroy it: refused, the file intact."""
    ds, pred_dir = perfect
    prediction = sorted(pred_dir.iterdir())[0]
    label = ds.pairs[0][1]
    for flag, target in (("--json", prediction), ("--csv", label)):
        before = target.read_bytes()
        assert main(["eval", "--pred-dir", str(pred_dir), "--data", f"synth:{ds.root}", "--split", "val",
                     flag, str(target)]) == 1
        assert "is also an input of this command" in capsys.readouterr().err
        assert target.read_bytes() == before


SCORE_WITHOUT_TORCH = """
import json, sys
from fasterseg.cli import main
code = main(["eval", "--pred-dir", sys.argv[1], "--data", sys.argv[2], "--json", sys.argv[3]])
print(code, "torch" in sys.modules)
"""


def test_scoring_a_folder_never_imports_torch(perfect, synth_root, tmp_path):
    """``eval --pred-dir`` in a fresh interpreter: the right numbers, and torch never loaded
    (its import is most of what a one-off evaluation of a folder waits for)."""
    import subprocess
    import sys

    ds, pred_dir = perfect
    out = tmp_path / "r.json"
    run = subprocess.run([sys.executable, "-c", SCORE_WITHOUT_TORCH, str(pred_dir), f"synth:{synth_root}", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.strip().splitlines()[-1] == "0 False", run.stdout[-500:] + run.stderr[-500:]
    assert json.loads(out.read_text())["average"]["IoU Classes"] == pytest.approx(1.0)
