"""A model file with int8 convolution weights against the same file in fp16: size and score.

Wider networks of the latency family do not fit the 10 MB a shipped file may take in fp16
(about 5 M parameters at most); int8 weights with a scale per output channel halve the file.
This scores both files with the official evaluator on the same frames:

    OMP_NUM_THREADS=1 python benchmarks/int8_weights.py --model camvid --split seq_val
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from fasterseg.cli import main as fasterseg
    from fasterseg.modelfile import convert_model_file
    from fasterseg.models import resolve_model_name

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="camvid", help="a model file or a built-in model's short name")
    p.add_argument("--data", default=None, help="dataset spec (default: the one the model file records)")
    p.add_argument("--split", default="seq_val")
    args = p.parse_args(argv)
    source = Path(resolve_model_name(args.model))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("fp16", "int8"):
            path = convert_model_file(source, Path(tmp) / f"{dtype}.safetensors", weights=dtype)
            scores = Path(tmp) / f"{dtype}.json"
            command = ["eval", "--model", str(path), "--split", args.split, "--json", str(scores)]
            if args.data:
                command += ["--data", args.data]
            if fasterseg(command) != 0:
                raise SystemExit(f"fasterseg {' '.join(command)} failed")
            average = json.loads(scores.read_text())["average"]
            rows.append((dtype, path.stat().st_size / 1e6, 100 * average["IoU Classes"]))
    print(f"\n{source.name} on {args.split}\n")
    print("| weights | file MB | mIoU |\n|---|---|---|")
    for dtype, megabytes, miou in rows:
        print(f"| {dtype} | {megabytes:.3f} | {miou:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
