"""benchmarks/latency_leverage.py: which architecture parameters move a derived student's latency, and
which ones the latency term pushes (issue 30)."""

from pathlib import Path

import pytest

from tests.helpers import load_benchmark_script

REPO = Path(__file__).resolve().parents[2]
leverage = load_benchmark_script("latency_leverage")
LUT = REPO / "benchmarks" / "results" / "lut" / "cpu_openvino_bf16_360x480_camvid.json"
CONFIG = REPO / "configs" / "search" / "camvid_cpu_family_small.yaml"


def test_the_eight_layer_cpu_space_gives_the_down_sampling_no_leverage_but_the_paper_split_all_push(capsys):
    """At 8 layers the 1/32 path is fixed, so redrawing the betas never moves a 1/8+1/32 student while
    redrawing its operators does; the paper's split still sends nearly all of the gradient to the betas,
    and a 1 : 0.5 : 1 split gives the operators a share of the same order as the others."""
    assert leverage.main(["--config", str(CONFIG), "--lut", str(LUT), "--bases", "3", "--redraws", "2",
                          "--states", "2", "--splits", "1,0.5,1"]) == 0
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip().strip("|").split("|")[1:]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line}
    eight = rows["leverage on the 8+32 student: mean change of its table ms"]
    assert float(eight[1]) == 0.0 and float(eight[0]) > 0.1
    paper = [float(c.rstrip("%")) for c in rows["push: share of the decoupled term's gradient"][:3]]
    assert paper[1] > 99.0 and paper[0] < 1.0
    split = [float(c.rstrip("%")) for c in rows["push: share of the decoupled 1,0.5,1 term's gradient"][:3]]
    assert sum(split) == pytest.approx(100.0, abs=0.2) and min(split) > 15.0
