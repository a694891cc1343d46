"""benchmarks/random_vs_searched.py: Kendall's tau by hand, and the table from trained runs."""

import pytest

from tests.helpers import load_benchmark_script

rvs = load_benchmark_script("random_vs_searched")


def test_kendall_tau_by_hand():
    assert rvs.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert rvs.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    # tau-b with a tie in x: 2 concordant, 0 discordant, 1 pair tied in x only -> 2 / sqrt(3 * 2)
    assert rvs.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 6 ** 0.5)


def test_the_table_reads_the_last_three_evaluations(tmp_path):
    out, runs = tmp_path / "rvs", tmp_path / "runs"
    out.mkdir()
    (out / "students.csv").write_text("name,latency_ms,ends,steps\nsearched,10.8,\"[2, 0]\",\n"
                                      "random_0,11.0,\"[2, 0]\",500\nrandom_1,10.5,\"[2, 1]\",600\n")
    (out / "supernet_scores.csv").write_text("name,pairing,supernet_miou\nsearched,8_32,0.30\nrandom_0,8_32,0.20\n"
                                             "random_1,16_32,0.25\n")
    for name, scores in {"searched": [0.1, 0.40, 0.42, 0.44], "random_0": [0.1, 0.30, 0.31, 0.32],
                         "random_1": [0.1, 0.35, 0.36, 0.37]}.items():
        (runs / f"rvs_{name}").mkdir(parents=True)
        rows = "".join(f"{10 * (i + 1)},0.5,0.001,1.0,{s},0.9\n" for i, s in enumerate(scores))
        (runs / f"rvs_{name}" / "epochs.csv").write_text("epoch,loss,lr,seconds,val_mIoU,val_pixel_accuracy\n" + rows)
    rvs.table(type("Args", (), {"out": str(out), "runs": str(runs)}))
    text = (out / "table.md").read_text()
    assert "| searched | 10.80 | 30.0 | 42.0 |" in text
    assert "Random students: 33.5 mean" in text and "(n=2)" in text
    assert "Kendall tau, supernet ranking vs trained ranking: 1.00 (n=3)" in text


def test_the_table_reads_a_finished_runs_kept_log_where_its_folder_is_gone(tmp_path):
    out = tmp_path / "rvs"
    out.mkdir()
    (out / "students.csv").write_text("name,latency_ms,ends,steps\nsearched,10.8,\"[2, 0]\",\n")
    rows = "".join(f"{10 * (i + 1)},0.5,0.001,1.0,{s},0.9\n" for i, s in enumerate([0.1, 0.40, 0.42, 0.47]))
    (out / "rvs_searched_epochs.csv").write_text("epoch,loss,lr,seconds,val_mIoU,val_pixel_accuracy\n" + rows)
    rvs.table(type("Args", (), {"out": str(out), "runs": str(tmp_path / "gone")}))
    assert "| searched | 10.80 |  | 43.0 |" in (out / "table.md").read_text()  # (40 + 42 + 47) / 3
