"""Our Cityscapes evaluator against cityscapesscripts' evaluateImgLists on the same prediction PNGs.

Writes synthetic scenes at full Cityscapes resolution, makes predictions by corrupting the ground
truth (swapped classes, shifted instance boundaries, noise), then, in one run and alternating so
both see the same machine load, times both evaluators

* end to end from the PNG files (what a user waits for), and
* scoring only, with every PNG already decoded in memory (cityscapesscripts' ``Image.open`` is
  served from a cache of loaded images; ours gets the same arrays as tensors),

* as whole processes, start-up included: ``fasterseg eval --pred-dir`` against the official
  script run as a program (``python -m cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``
  with its environment variables), what a user who evaluates a folder once actually waits for,

and the floor under any evaluator of these files: decoding the three PNGs of each image
(prediction, labelIds, instanceIds) with PIL on one thread, which bounds the end-to-end speed-up
one core can give. Checks that the evaluators' numbers agree and prints a table.

    python benchmarks/eval_speed.py [--images 40] [--size 1024x2048] [--workers 4] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import json
import subprocess

import numpy as np
from PIL import Image

from fasterseg.commands.common import parse_size
from fasterseg.data.registry import build_dataset
from fasterseg.data.synth import SynthConfig, generate
from fasterseg.evaluate.predictions import evaluate_predictions


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def official(preds: list[Path], gts: list[Path]) -> dict:
    """cityscapesscripts' evaluator, quiet, with numpy 2.4's missing ``in1d`` supplied for the call."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    shim = not hasattr(np, "in1d")
    if shim:
        np.in1d = lambda a, b, invert=False: np.isin(a, b, invert=invert).ravel()
    try:
        ev.args.quiet, ev.args.JSONOutput, ev.args.evalInstLevelScore = True, False, True
        return ev.evaluateImgLists([str(p) for p in preds], [str(g) for g in gts], ev.args)
    finally:
        if shim:
            del np.in1d


class _DecodedCache:
    """Stands in for PIL.Image inside cityscapesscripts: ``open`` returns an already decoded image."""

    def __init__(self, files: list[Path]):
        self.images = {}
        for f in files:
            im = Image.open(f)
            im.load()
            self.images[str(f)] = im

    def open(self, path):
        return self.images[str(path)]


def official_scoring_only(preds: list[Path], gts: list[Path]) -> tuple[dict, float]:
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    cache = _DecodedCache(preds + gts + [Path(str(g).replace("labelIds", "instanceIds")) for g in gts])
    real = ev.Image
    ev.Image = cache
    try:
        t0 = time.perf_counter()
        ref = official(preds, gts)
        return ref, time.perf_counter() - t0
    finally:
        ev.Image = real


def ours_scoring_only(ds, preds: list[Path]) -> tuple[object, float]:
    from fasterseg.evaluate.cityscapes import CityscapesScorer

    data = [(np.array(Image.open(p)), ds.load_label(i), ds.load_instances(i)) for i, p in enumerate(preds)]
    t0 = time.perf_counter()
    scorer = CityscapesScorer()
    for pred, label, inst in data:
        scorer.update(pred, label, inst, ids="label")
    return scorer.result(), time.perf_counter() - t0


# The official script as a program; numpy >= 2.4 removed ``in1d``, which it calls, so the shim is
# supplied before it runs (it costs nothing measurable).
_OFFICIAL_PROGRAM = (
    "import numpy as np, runpy\n"
    "if not hasattr(np, 'in1d'):\n"
    "    np.in1d = lambda a, b, invert=False: np.isin(a, b, invert=invert).ravel()\n"
    "runpy.run_module('cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling', run_name='__main__')\n"
)


def official_process(data_root: Path, pred_dir: Path, export: Path) -> tuple[dict, float]:
    """The official evaluator as a user runs it: a fresh interpreter, its environment variables."""
    env = dict(os.environ, CITYSCAPES_DATASET=str(data_root), CITYSCAPES_RESULTS=str(pred_dir),
               CITYSCAPES_EXPORT_DIR=str(export))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _OFFICIAL_PROGRAM], env=env, check=True, stdout=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    return json.loads((export / "resultPixelLevelSemanticLabeling.json").read_text()), dt


def ours_process(data_root: Path, pred_dir: Path, out: Path, workers: int) -> tuple[dict, float]:
    """``fasterseg eval --pred-dir`` in a fresh interpreter (no torch import on this path)."""
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("fasterseg")), "eval", "--pred-dir", str(pred_dir), "--data",
                    f"synth:{data_root}", "--split", "val", "--workers", str(workers), "--json", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    return json.loads(out.read_text()), dt


def decode_only(preds: list[Path], gts: list[Path]) -> float:
    """Seconds to decode every PNG either evaluator must read, one thread."""
    t0 = time.perf_counter()
    for p, g in zip(preds, gts):
        for path in (p, g, Path(str(g).replace("labelIds", "instanceIds"))):
            np.asarray(Image.open(path))
    return time.perf_counter() - t0


def make_predictions(ds, out: Path, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    files = []
    for i in range(len(ds)):
        label, inst = ds.load_label_ids(i), ds.load_instances(i)
        pred = label.copy()
        pred[label == 26] = 27  # car -> truck
        edge = np.zeros(label.shape, bool)
        edge[1:] |= inst[1:] != inst[:-1]
        edge[:, 1:] |= inst[:, 1:] != inst[:, :-1]
        pred[edge] = np.roll(label, 3, axis=0)[edge]
        noise = rng.random(label.shape) < 0.05
        pred[noise] = rng.integers(0, 34, int(noise.sum()))
        path = out / f"{ds.name(i)}_pred.png"
        Image.fromarray(pred.astype(np.uint8)).save(path)
        files.append(path)
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--size", type=parse_size, default=(1024, 2048))
    ap.add_argument("--workers", type=int, default=4, help="decoding threads of our evaluator")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs of each evaluator (best is reported)")
    args = ap.parse_args()
    h, w = args.size
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        generate(SynthConfig(out=root, train=0, val=args.images, size=(h, w), seed=0), progress=False)
        ds = build_dataset(f"synth:{root}", "val")
        pred_dir = Path(tmp) / "pred"
        pred_dir.mkdir()
        preds = make_predictions(ds, pred_dir)
        gts = [ds.label_path(i) for i in range(len(ds))]
        instances = np.mean([len(np.unique(ds.load_instances(i)[ds.load_instances(i) > 1000])) for i in range(len(ds))])

        t_ref, t_ours, s_ref, s_ours, t_decode, p_ref, p_ours = [], [], [], [], [], [], []
        for _ in range(args.repeat):  # alternate, so both see the same machine load
            t0 = time.perf_counter()
            ref = official(preds, gts)
            t_ref.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ours = evaluate_predictions(pred_dir, ds, ids="label", workers=args.workers, progress=False)
            t_ours.append(time.perf_counter() - t0)
            ref_mem, dt = official_scoring_only(preds, gts)
            s_ref.append(dt)
            ours_mem, dt = ours_scoring_only(ds, preds)
            s_ours.append(dt)
            t_decode.append(decode_only(preds, gts))
            ref_proc, dt = official_process(root, pred_dir, Path(tmp))
            p_ref.append(dt)
            ours_proc, dt = ours_process(root, pred_dir, Path(tmp) / "ours.json", args.workers)
            p_ours.append(dt)
        keys = (("IoU Classes", "averageScoreClasses"), ("iIoU Classes", "averageScoreInstClasses"),
                ("IoU Categories", "averageScoreCategories"), ("iIoU Categories", "averageScoreInstCategories"))
        diff = max(max(abs(o.averages[k] - r[rk]) for k, rk in keys) for o, r in ((ours, ref), (ours_mem, ref_mem)))
        diff = max(diff, max(abs(ours_proc["average"][k] - ref_proc[rk]) for k, rk in keys))

    n = args.images
    print(f"CPU ({platform.machine()}, {os.cpu_count()} cores), python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, cityscapesscripts {_version('cityscapesscripts')}")
    print(f"{n} images of {h}x{w}, {instances:.1f} instances per image, best of {args.repeat} runs")
    print()
    print("| what is timed | cityscapesscripts (ms/image) | fasterseg (ms/image) | speed-up |")
    print("|---|---|---|---|")
    for what, a, b in ((f"end to end from PNG files (ours: {args.workers} decoding threads)", t_ref, t_ours),
                       ("scoring only, PNGs decoded in memory", s_ref, s_ours)):
        print(f"| {what} | {1000 * min(a) / n:.1f} | {1000 * min(b) / n:.1f} | {min(a) / min(b):.1f}x |")
    print(f"| whole process, start-up included ({n} images) | {1000 * min(p_ref) / n:.1f} | "
          f"{1000 * min(p_ours) / n:.1f} | {min(p_ref) / min(p_ours):.2f}x |")
    floor = min(t_decode)
    print(f"| decoding the 3 PNGs per image only (PIL, 1 thread): the floor of both | {1000 * floor / n:.1f} | "
          f"{1000 * floor / n:.1f} | at most {min(t_ref) / floor:.1f}x per core |")
    print()
    print(f"largest difference of the four averages between the evaluators: {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
