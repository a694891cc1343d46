"""Our Cityscapes numbers equal cityscapesscripts' evaluateImgLists to 1e-6, and hand-computed cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fasterseg.data.registry import build_dataset
from fasterseg.evaluate.cityscapes import CityscapesScorer
from fasterseg.evaluate.predictions import evaluate_predictions
from tests.evaluate.official import official_evaluate

CAR, TRUCK, ROAD, PERSON, RIDER, CARAVAN, SIDEWALK = 26, 27, 7, 24, 25, 29, 8


def corrupt(label: np.ndarray, inst: np.ndarray, rng: np.random.Generator, mode: int) -> np.ndarray:
    """A plausible wrong prediction in label ids: swapped classes, eroded instances, noise."""
    pred = label.copy()
    if mode in (0, 2):  # swapped classes, in part of the image
        half = np.zeros_like(label, dtype=bool)
        half[:, : label.shape[1] // 2] = True
        pred[(label == CAR) & half] = TRUCK
        pred[(label == ROAD) & ~half] = SIDEWALK
        pred[label == PERSON] = np.where(rng.random((label == PERSON).sum()) < 0.5, RIDER, PERSON)
    if mode in (1, 2):  # eroded instances: boundary pixels take the label of the pixel above/left
        edge = np.zeros_like(label, dtype=bool)
        edge[1:, :] |= inst[1:, :] != inst[:-1, :]
        edge[:, 1:] |= inst[:, 1:] != inst[:, :-1]
        edge &= inst > 1000
        shifted = np.roll(np.roll(label, 2, axis=0), 2, axis=1)
        pred[edge] = shifted[edge]
    noise = rng.random(label.shape) < 0.05  # noise over every label id, ignored ones included
    pred[noise] = rng.integers(0, 34, noise.sum())
    if mode == 1:
        pred[pred == ROAD] = np.where(rng.random((pred == ROAD).sum()) < 0.2, CARAVAN, ROAD)
    return pred.astype(np.uint8)


@pytest.fixture(scope="module")
def corrupted(synth_root: Path, tmp_path_factory) -> tuple[Path, list[Path], list[Path]]:
    ds = build_dataset(f"synth:{synth_root}", "val")
    out = tmp_path_factory.mktemp("pred")
    rng = np.random.default_rng(7)
    preds, gts = [], []
    for i in range(len(ds)):
        pred = corrupt(ds.load_label_ids(i), ds.load_instances(i), rng, i % 3)
        path = out / ds.name(i).split("_")[0] / f"{ds.name(i)}_leftImg8bit.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(pred).save(path)
        preds.append(path)
        gts.append(ds.label_path(i))
    return out, preds, gts


def assert_close(ours: float, ref: float, what: str) -> None:
    if math.isnan(ref):
        assert math.isnan(ours), f"{what}: ours {ours}, cityscapesscripts NaN"
    else:
        assert abs(ours - ref) <= 1e-6, f"{what}: ours {ours}, cityscapesscripts {ref}"


def test_every_number_equals_cityscapesscripts(synth_root, corrupted):
    pred_dir, preds, gts = corrupted
    ref = official_evaluate(preds, gts)
    ours = evaluate_predictions(pred_dir, build_dataset(f"synth:{synth_root}", "val"), ids="label", progress=False)
    for name, v in ours.class_iou.items():
        assert_close(v, ref["classScores"][name], f"IoU {name}")
        assert_close(ours.class_iiou[name], ref["classInstScores"][name], f"iIoU {name}")
    for name, v in ours.category_iou.items():
        assert_close(v, ref["categoryScores"][name], f"IoU category {name}")
        assert_close(ours.category_iiou[name], ref["categoryInstScores"][name], f"iIoU category {name}")
    avg = ours.averages
    assert_close(avg["IoU Classes"], ref["averageScoreClasses"], "IoU Classes")
    assert_close(avg["iIoU Classes"], ref["averageScoreInstClasses"], "iIoU Classes")
    assert_close(avg["IoU Categories"], ref["averageScoreCategories"], "IoU Categories")
    assert_close(avg["iIoU Categories"], ref["averageScoreInstCategories"], "iIoU Categories")
    # the corruption must have exercised what is being compared
    assert 0.2 < avg["IoU Classes"] < 0.95 and 0.2 < avg["iIoU Classes"] < 0.95
    assert sum(not math.isnan(v) for v in ours.class_iiou.values()) == 8


def test_train_id_predictions_score_like_label_ids(synth_root, corrupted, tmp_path):
    """The same predictions given as train ids (what a model outputs) give the same numbers,
    as long as they contain no ignored label id that the label-id path would keep apart."""
    from fasterseg.data.labels import id_to_train_table

    pred_dir, preds, _ = corrupted
    ds = build_dataset(f"synth:{synth_root}", "val")
    by_label, by_train = CityscapesScorer(), CityscapesScorer()
    for i, p in enumerate(preds):
        pred = np.asarray(Image.open(p))
        pred = np.where(id_to_train_table()[pred] == 255, 0, pred).astype(np.uint8)  # ignored ids -> unlabeled
        by_label.update(pred, ds.load_label(i), ds.load_instances(i), ids="label")
        by_train.update(id_to_train_table()[pred], ds.load_label(i), ds.load_instances(i), ids="train")
    a, b = by_label.result(), by_train.result()
    assert a.averages == pytest.approx(b.averages, abs=1e-12)
    np.testing.assert_array_equal(a.confusion, b.confusion)


def _hand_case(tmp_path: Path):
    """2x3 pixels: two cars (sizes 2 and 1), one person, two road pixels."""
    label = np.array([[CAR, CAR, ROAD], [CAR, PERSON, ROAD]], np.uint8)
    inst = np.array([[26000, 26000, ROAD], [26001, 24000, ROAD]], np.uint16)
    pred = np.array([[CAR, ROAD, ROAD], [TRUCK, PERSON, CARAVAN]], np.uint8)
    root = tmp_path / "gtFine" / "val" / "x"
    root.mkdir(parents=True)
    Image.fromarray(label).save(root / "x_000000_000000_gtFine_labelIds.png")
    Image.fromarray(inst).save(root / "x_000000_000000_gtFine_instanceIds.png")
    Image.fromarray(pred).save(tmp_path / "x_000000_000000_pred.png")
    return label, inst, pred, root / "x_000000_000000_gtFine_labelIds.png", tmp_path / "x_000000_000000_pred.png"


def test_hand_computed_case_and_official_agree(tmp_path):
    from fasterseg.data.labels import id_to_train_table

    label, inst, pred, gt_file, pred_file = _hand_case(tmp_path)
    scorer = CityscapesScorer()
    scorer.update(pred, id_to_train_table()[label], inst.astype(np.int32), ids="label")
    r = scorer.result()
    w_car = 12794.0202738185
    # road: tp 1, fn 1 (predicted caravan), fp 1 (a car pixel predicted road)
    assert r.class_iou["road"] == pytest.approx(1 / 3)
    assert r.class_iou["car"] == pytest.approx(1 / 3)  # tp 1, fn 2
    assert r.class_iou["truck"] == 0.0 and r.class_iou["person"] == 1.0
    assert math.isnan(r.class_iou["sky"]) and math.isnan(r.class_iiou["road"])
    # car iIoU: instance of 2 px half found (weight w/2), instance of 1 px missed (weight w)
    assert r.class_iiou["car"] == pytest.approx((w_car / 2) / (w_car / 2 + w_car / 2 + w_car))
    assert r.class_iiou["truck"] == 0.0 and r.class_iiou["person"] == 1.0
    assert r.category_iou["vehicle"] == pytest.approx(2 / 3)
    assert r.category_iou["flat"] == pytest.approx(1 / 3)
    # vehicle iIoU: the truck pixel counts as vehicle; the caravan pixel on the road is a false positive
    tp_w, fn_w = w_car / 2 + w_car, w_car / 2
    assert r.category_iiou["vehicle"] == pytest.approx(tp_w / (tp_w + fn_w + 1))
    assert r.averages["IoU Classes"] == pytest.approx((1 / 3 + 1 / 3 + 0 + 1) / 4)

    ref = official_evaluate([pred_file], [gt_file])
    assert r.averages["iIoU Categories"] == pytest.approx(ref["averageScoreInstCategories"], abs=1e-12)
    assert r.class_iiou["car"] == pytest.approx(ref["classInstScores"]["car"], abs=1e-12)


def test_streaming_equals_one_batch(synth_root):
    """Counting image by image or the whole split at once gives the same matrix."""
    import torch

    ds = build_dataset(f"synth:{synth_root}", "val")
    one, batch = CityscapesScorer(), CityscapesScorer()
    labels = [torch.from_numpy(ds.load_label(i)) for i in range(len(ds))]
    preds = [torch.roll(lab.clamp(max=18), 3, dims=1) for lab in labels]
    for p, lab in zip(preds, labels):
        one.update(p, lab)
    batch.update(torch.stack(preds), torch.stack(labels))
    np.testing.assert_array_equal(one.result().confusion, batch.result().confusion)
