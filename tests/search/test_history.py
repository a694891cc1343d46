"""Search history: every epoch's derived networks are kept, and --pick gives back any of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fasterseg.cli import main
from fasterseg.genotype import Genotype
from fasterseg.modelfile import load_genotype
from fasterseg.search.history import EpochEntry, pick, read_history
from fasterseg.errors import HistoryError
from fasterseg.search.loop import run_phase

from tests.helpers import tiny_genotype
from tests.search.test_data_and_loop import _cost, _macs_latency, tiny_search_config, write_camvid

EPOCHS = 3


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("history")
    data = write_camvid(tmp / "camvid", n=4, splits=("train", "val"))
    cfg = tiny_search_config(data, pretrain=False, epochs=EPOCHS, val_data=f"camvid:{data}", val_limit=2,
                             latency_weights={"student": 0.5}, fps_min={"student": 1e6}, fps_max={"student": 2e6})
    run = tmp / "run"
    records = run_phase(cfg, run / "search", latency_fn=_cost, genotype_latency=_macs_latency)
    return run, records


def test_every_epoch_of_both_architectures_is_recorded(searched):
    run, records = searched
    history = read_history(run / "search")
    assert sorted(history) == ["student", "teacher"]
    assert [e.epoch for e in history["student"]] == list(range(1, EPOCHS + 1))
    # the record of an epoch is what the search derived and used then
    weights = [0.5 * 2 ** k for k in range(EPOCHS)]  # far below the window: doubled after every epoch
    assert [e.latency_weight for e in history["student"]] == weights
    assert [e.fps_window for e in history["student"]] == [(1e6, 2e6)] * EPOCHS
    assert [e.latency_weight for e in history["teacher"]] == [None] * EPOCHS
    assert list(history["student"][-1].miou.values()) == records[-1].miou["student"]
    last = json.loads((run / "search" / "student.json").read_text())
    assert history["student"][-1].genotype == Genotype.from_dict(last["genotype"])
    assert (run / "search" / "evolution_student.png").stat().st_size > 2000


def test_pick_by_epoch_reproduces_that_epochs_genotype_exactly(searched, capsys):
    run, _ = searched
    entry = read_history(run / "search")["student"][1]
    assert main(["search", "--pick", str(run), "--epoch", "2"]) == 0
    picked = run / "picked" / "epoch_002" / "student.json"
    assert load_genotype(str(picked)) == entry.genotype
    stored = json.loads(entry.path.read_text())["genotype"]
    assert json.loads(picked.read_text()) == stored  # the same JSON, not only an equal network
    assert "epoch 2" in capsys.readouterr().out
    assert main(["search", "--pick", str(run), "--epoch", str(EPOCHS + 5)]) == 1


def _entry(epoch, fps, miou, window=(100.0, 200.0)):
    return EpochEntry(epoch, "student", tiny_genotype(), {"8_32": miou}, {"8_32": 1000.0 / fps}, 0.01, window, Path("x"))


def test_the_rules_by_hand():
    entries = {"student": [_entry(1, 90, 0.50), _entry(2, 150, 0.40), _entry(3, 180, 0.45), _entry(4, 250, 0.60)]}
    assert pick(entries, rule="last")["student"].epoch == 4
    assert pick(entries, rule="best-miou")["student"].epoch == 4
    assert pick(entries, rule="best-miou-in-window")["student"].epoch == 3  # 2 and 3 are inside; 3 scores higher
    outside = {"student": [_entry(1, 90, 0.5), _entry(2, 95, 0.3), _entry(3, 300, 0.9)]}
    assert pick(outside, rule="best-miou-in-window")["student"].epoch == 2  # none inside: the closest
    with pytest.raises(HistoryError, match="unknown rule"):
        pick(entries, rule="fastest")


def test_a_run_without_history_is_an_error_naming_the_folder(tmp_path):
    with pytest.raises(HistoryError, match="no search history"):
        read_history(tmp_path)


def test_each_operator_gets_its_own_colour_and_a_sixth_one_too():
    from fasterseg.layers.ops import OP_NAMES
    from fasterseg.search.history import op_colours

    for n in (len(OP_NAMES), len(OP_NAMES) + 1, 12):
        colours = op_colours(n)
        assert len(colours) == n and len(set(colours)) == n
    assert op_colours(len(OP_NAMES))[0] == "#dddddd"  # skip stays grey, the others as before


def test_pick_says_when_no_epoch_was_inside_the_window(searched, tmp_path, capsys):
    import shutil

    run, _ = searched
    copy = tmp_path / "run"
    shutil.copytree(run / "search" / "history", copy / "search" / "history")
    for window, said in (([1e6, 2e6], True), ([0.0, 1e9], False)):
        for path in (copy / "search" / "history").glob("epoch_*_student.json"):
            data = json.loads(path.read_text())
            data["fps_window"] = window
            path.write_text(json.dumps(data))
        assert main(["search", "--pick", str(copy)]) == 0
        out = capsys.readouterr().out
        assert ("note: no epoch of the student was inside its FPS window [1e+06, 2e+06]" in out) is said
        assert "teacher" in out and "note: no epoch of the teacher" not in out
