"""benchmarks/family_windows.py: which table latencies the CamVid CPU space's student reaches."""

import re
from pathlib import Path

import pytest

from tests.helpers import load_benchmark_script

REPO = Path(__file__).resolve().parents[2]
family = load_benchmark_script("family_windows")
LUT = REPO / "benchmarks" / "results" / "lut" / "cpu_openvino_bf16_360x480_camvid.json"
CONFIG = REPO / "configs" / "search" / "camvid_cpu_adam.yaml"


def test_windows_of_networks_that_exist_are_reached_and_one_beyond_the_widest_is_not():
    """The first search's student (10.82 table ms) is a network of this space, so its window is
    reachable; 40 ms is beyond the full-width teacher's 33 ms, so no student of stem 1/3 and
    head 1/2 can reach it, and the chain says how close it came."""
    table = family.reach_table(str(CONFIG), str(LUT), [(1 / 3, 0.5)], [10.82, 40.0], max_steps=400)
    row = table.splitlines()[2]
    assert row.startswith("| 0.33 / 0.50 |")
    found, missed = [c.strip() for c in row.strip("|").split("|")[1:]]
    assert float(found) == pytest.approx(10.82, rel=0.05)
    closest = float(re.fullmatch(r"no \(closest ([\d.]+)\)", missed).group(1))
    assert closest < 40.0 * 0.95


def test_widths_are_checked_when_parsed():
    import argparse

    assert family._widths("0.5:1") == (0.5, 1.0)
    with pytest.raises(argparse.ArgumentTypeError, match="STEM:HEAD"):
        family._widths("0.5")


def test_the_wide_family_config_reaches_both_of_its_windows():
    """configs/search/camvid_cpu_family_wide.yaml's student (stem 2/3, head 1) must reach the windows
    its two searches are run at: its own, 43-50 FPS, and the large member's, 35-40 FPS."""
    wide = REPO / "configs" / "search" / "camvid_cpu_family_wide.yaml"
    table = family.reach_table(str(wide), str(LUT), [(2 / 3, 1.0)], [1000 / 46.5, 1000 / 37.5], tolerance=0.06,
                               max_steps=2000)
    cells = [c.strip() for c in table.splitlines()[2].strip("|").split("|")[1:]]
    assert [float(c) for c in cells] == [pytest.approx(1000 / 46.5, rel=0.06), pytest.approx(1000 / 37.5, rel=0.06)]


def test_parameters_and_seeds_give_a_row_per_seed():
    """With several seeds a row per chain seed; with params, each found network's inference parameters
    (the built-in student, found at this latency, has 1.08 M: students here have about a million)."""
    table = family.reach_table(str(CONFIG), str(LUT), [(1 / 3, 0.5)], [10.82], max_steps=400, seeds=(0, 1),
                               params=True)
    rows = table.splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == ["0.33 / 0.50 (seed 0)", "0.33 / 0.50 (seed 1)"]
    for row in rows:
        ms, millions = re.fullmatch(r"\| .* \| ([\d.]+) \(([\d.]+) M\) \|", row).groups()
        assert float(ms) == pytest.approx(10.82, rel=0.05) and 0.3 < float(millions) < 3.0
