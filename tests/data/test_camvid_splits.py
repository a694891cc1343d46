"""CamVid's sequence-disjoint splits, checked against the real frames in ../shared when present."""

from __future__ import annotations

import pytest

from fasterseg.data.camvid import sequence_of
from fasterseg.data.registry import build_dataset


@pytest.fixture()
def camvid_spec(shared):
    root = shared / "data" / "camvid"
    if not (root / "train.txt").is_file():
        pytest.skip(f"{root}: the CamVid frames are not there")
    return f"camvid:{root}"


def _sequences(dataset):
    return {sequence_of(image) for image, _ in dataset.pairs}


def test_the_held_out_split_shares_no_sequence_with_training(camvid_spec):
    train, held_out = build_dataset(camvid_spec, "seq_train"), build_dataset(camvid_spec, "seq_val")
    assert _sequences(held_out) == {"0006R0"}
    assert _sequences(train) == {"0001TP", "0016E5"}
    assert (len(train), len(held_out)) == (367, 101)
    # together they are every listed frame, once
    listed = build_dataset(camvid_spec, "train").pairs + build_dataset(camvid_spec, "val").pairs
    assert sorted(train.pairs + held_out.pairs) == sorted(listed)
    assert len(build_dataset(camvid_spec, "trainval")) == len(listed) == 468


def test_the_segnet_val_split_shares_its_sequence_with_train(camvid_spec):
    # why seq_val exists: val's frames all come from a sequence train also uses
    assert _sequences(build_dataset(camvid_spec, "val")) <= _sequences(build_dataset(camvid_spec, "train"))


def test_an_unknown_split_names_the_list_file_and_the_made_ones(tmp_path):
    from fasterseg.errors import DatasetError

    (tmp_path / "train.txt").write_text("")
    with pytest.raises(DatasetError, match=r"nope\.txt.*trainval, seq_train, seq_val"):
        build_dataset(f"camvid:{tmp_path}", "nope")
