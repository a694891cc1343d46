"""benchmarks/int8_weights.py on a tiny trained model: both files are scored by the evaluator on the
same frames, the int8 file is the smaller, and its score is the fp16 file's within a point."""

import re

from fasterseg.train.trainer import train
from tests.helpers import load_benchmark_script, toy_train_config

bench = load_benchmark_script("int8_weights")


def test_int8_file_is_smaller_and_scores_as_fp16(toy, tmp_path, capsys):
    run = train(toy_train_config(toy, tmp_path, "tiny", "epochs=2", "iters_per_epoch=4"), show_progress=False).run_dir
    assert bench.main(["--model", str(run / "last.safetensors"), "--data", toy[0], "--split", "val"]) == 0
    rows = dict((m.group(1), (float(m.group(2)), float(m.group(3))))
                for m in re.finditer(r"^\| (fp16|int8) \| ([\d.]+) \| ([\d.]+) \|$", capsys.readouterr().out, re.M))
    assert set(rows) == {"fp16", "int8"}
    assert rows["int8"][0] < rows["fp16"][0]
    assert abs(rows["int8"][1] - rows["fp16"][1]) < 1.0
