"""benchmarks/arch_spread.py: the spread and softmax lift of architecture parameters, by hand."""

import json
import math

from tests.helpers import load_benchmark_script

spread = load_benchmark_script("arch_spread")


def test_spread_and_lift_by_hand(tmp_path, capsys):
    params = {"student": {"alpha_0": [[0.0, 0.1, -0.2], [0.05, 0.0, 0.0]], "beta_1": [[0.3, 0.0]],
                          "ratio_0": [[0.001]]},  # a one-option choice: nothing to choose, left out
              "teacher": {"alpha_0": [[0.0, 0.0, 0.0]]}}
    rows = {(a, k): (n, s, lift) for a, k, n, s, lift in spread.spread_rows(params)}
    assert set(rows) == {("student", "alpha"), ("student", "beta"), ("teacher", "alpha")}
    n, s, lift = rows[("student", "alpha")]
    assert n == 2 and math.isclose(s, 0.3)
    assert math.isclose(lift, 3 * math.exp(0.1) / (1 + math.exp(0.1) + math.exp(-0.2)))
    assert rows[("teacher", "alpha")][1:] == (0.0, 1.0)  # untouched: uniform
    run = tmp_path / "run"
    (run / "search").mkdir(parents=True)
    (run / "search" / "arch.json").write_text(json.dumps(params))
    (run / "config.yaml").write_text("search:\n  epochs: 4\n  iters_per_epoch: 25\n  arch_lr: 0.001\n")
    assert spread.main([str(run)]) == 0
    assert "| run | 100 | 0.100 | student | beta | 1 | 0.300 |" in capsys.readouterr().out
