"""Label paths side by side: what each costs against the network, and what it scores (issue 32).

For each deploy path (default: OpenVINO bf16, ONNX Runtime fp32) and input size (360x480,
1024x2048), the built-in model is timed end to end and model-only with each label path
(exact, half, quarter) in the same interleaved rounds (`fasterseg.infer.bench`); the label
map's cost is end to end minus model-only. Each path is then scored on CamVid's seq_val with
`fasterseg eval --backend ... --label-path ...` (the real evaluator through the deploy path) with
the model trained on seq_train only.

    python benchmarks/label_paths.py [--backends openvino:bf16 onnxruntime:fp32] [--json out.json]

``--model M --data SPEC --split S --no-timings`` scores another model on another set, e.g. the
19-class check on the synthetic Cityscapes-layout scenes (a model trained on their train split).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEQ_TRAIN_MODEL = REPO / "benchmarks" / "results" / "camvid_cpu_search" / "student_nokd_seq_train.safetensors"
CAMVID = REPO.parent / "shared" / "data" / "camvid"


def timings(backends: list[tuple[str, str]], sizes: list[tuple[int, int]], repeats: int) -> list[dict]:
    from fasterseg.backends import LABEL_PATHS
    from fasterseg.infer.bench import bench_backends
    from fasterseg.infer.runners import RunnerOptions
    from fasterseg.modelfile import load_model
    from fasterseg.models import builtin_model_path

    model = load_model(str(builtin_model_path()))
    rows = []
    graphs = Path(tempfile.mkdtemp(prefix="fasterseg-label-paths-"))  # dynamic graphs, each exported once
    for size in sizes:
        for backend, precision in backends:
            options = [RunnerOptions(backend=backend, precision=precision, compile=False, label_path=path,
                                     onnx_dir=graphs) for path in LABEL_PATHS]
            for row, path in zip(bench_backends(model, options, size, repeats=repeats), LABEL_PATHS):
                if row.error:
                    print(f"{backend} {precision}: {row.error}", file=sys.stderr)
                    break
                rows.append({"size": list(size), "backend": backend, "precision": precision, "label_path": path,
                             "end_to_end_ms": row.end_to_end.median_ms, "model_only_ms": row.model_only.median_ms,
                             "labels_ms": row.labels_ms, "labels_over_network": row.labels_ms / row.model_only.median_ms,
                             "agreement_with_exact": row.agreement})
                print(f"{size[0]}x{size[1]} {backend} {precision} {path:>7}: end to end {row.end_to_end.median_ms:.2f} ms, "
                      f"network {row.model_only.median_ms:.2f} ms, label map {row.labels_ms:.2f} ms "
                      f"({row.labels_ms / row.model_only.median_ms:.2f}x)", flush=True)
    return rows


def scores(backend: str, precision: str, model: str, data: str, split: str) -> dict[str, float]:
    from fasterseg.backends import LABEL_PATHS

    out = {}
    for path in LABEL_PATHS:
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([str(Path(sys.executable).with_name("fasterseg")), "eval", "--model", model,
                            "--data", data, "--split", split, "--backend", backend, "--precision", precision,
                            "--label-path", path, "--json", f.name], check=True, capture_output=True, cwd=REPO)
            out[path] = json.loads(Path(f.name).read_text())["average"]["IoU Classes"]
        print(f"{split} {backend} {precision} {path:>7}: {100 * out[path]:.2f} mIoU", flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=["openvino:bf16", "onnxruntime:fp32"], help="BACKEND:PRECISION")
    p.add_argument("--sizes", nargs="+", default=["360x480", "1024x2048"])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", help="write the results here too")
    p.add_argument("--model", default=str(SEQ_TRAIN_MODEL), help="the model scored (default: the built-in "
                   "architecture trained on CamVid's seq_train)")
    p.add_argument("--data", default=f"camvid:{CAMVID}", help="dataset spec scored (default: CamVid)")
    p.add_argument("--split", default="seq_val", help="split scored (default: seq_val)")
    p.add_argument("--no-timings", action="store_true", help="score only")
    args = p.parse_args()
    backends = [tuple(b.split(":")) for b in args.backends]
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    result = {"command": " ".join(["python", "benchmarks/label_paths.py", *sys.argv[1:]]),
              "timings": [] if args.no_timings else timings(backends, sizes, args.repeats),
              "model": args.model, "data": args.data, "split": args.split,
              "miou": {f"{b}:{pr}": scores(b, pr, args.model, args.data, args.split) for b, pr in backends}}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
