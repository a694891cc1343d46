"""Package a training run's best model as fasterseg's built-in model (fp16, no aux heads).

    python scripts/ship_builtin_model.py RUN_DIR [--out src/fasterseg/models/camvid_student.safetensors]

The model file records how it was made: the exact training command, its data and splits, the
run's validation mIoU (on ``val_split``) and the date, so `fasterseg info` on it says where it came from.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from fasterseg.modelfile import convert_model_file


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a `fasterseg train` run directory")
    p.add_argument("--out", type=Path, default=Path("src/fasterseg/models/camvid_student.safetensors"))
    p.add_argument("--note", default="", help="free text stored with the model (e.g. where its genotype came from)")
    args = p.parse_args()
    env = json.loads((args.run / "environment.json").read_text())
    metrics = json.loads((args.run / "metrics.json").read_text())
    argv = env["command"]
    command = "fasterseg " + " ".join(shlex.quote(a) for a in argv[1:])
    extra = {
        "command": command,
        "data": metrics["config"]["data"]["spec"],
        "val_mIoU": metrics["best_val_mIoU"],
        "train_split": metrics["config"]["data"]["train_split"],
        "val_split": metrics["config"]["data"]["val_split"],
        "epochs": metrics["epochs"],
        "trained": env["date"],
        "torch": env["torch"],
        "git_commit": env.get("git_commit"),
    }
    if args.note:
        extra["note"] = args.note
    out = convert_model_file(args.run / "best.safetensors", args.out, half=True, include_aux=False, extra=extra)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {extra['val_split']} mIoU {100 * extra['val_mIoU']:.2f}")


if __name__ == "__main__":
    main()
