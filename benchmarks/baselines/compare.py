"""Searched students against hand-designed networks on equal terms: held-out mIoU and latency on
the same deploy path and machine, measured side by side, with a Pareto plot (latency vs mIoU).

Every model is scored here with the package's evaluator on the same split (CamVid ``seq_val``,
a sequence none of them trained on), and timed in one run whose every round calls every network on
every deploy path once, so load drift on a shared machine cannot favour one of them.

    python benchmarks/baselines/compare.py \\
        --model official=runs/camvid_heldout/last.safetensors \\
        --model searched=runs/camvid_cpu_student/last.safetensors \\
        --model bisenetv2=runs/baselines/bisenetv2/last.safetensors \\
        --model ddrnet23slim=runs/baselines/ddrnet23slim/last.safetensors \\
        --data camvid:../shared/data/camvid --split seq_val --size 360x480 \\
        --backend openvino:bf16 onnxruntime:fp32 --threads 2 --out runs/compare
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch


def load(spec: str):
    """``MODEL.safetensors``: a fasterseg model file of any registered network (baselines train with
    ``fasterseg train --network``), or ``NETWORK:WEIGHTS.safetensors``: a bare weights file that the
    baselines' own training loop wrote before they moved into the package (the committed
    ``bisenetv2_seq_train.safetensors``, fp16), its header naming the network and class count."""
    from fasterseg.nets.registry import REGISTRY, entry

    kind, sep, path = spec.partition(":")
    if sep and (kind in REGISTRY or kind == "ddrnet23slim"):
        from safetensors import safe_open
        from safetensors.torch import load_file

        from fasterseg.nets.registry import build_network

        with safe_open(path, "pt") as f:
            metadata = f.metadata() or {}
        if entry(metadata.get("network", kind)).name != entry(kind).name:  # a clear error, not a key list
            raise ValueError(f"{path} holds {metadata['network']} weights, not {kind}'s (spec '{spec}')")
        state = load_file(path)
        model = build_network(kind, int(metadata["num_classes"]), aux_heads=any(k.startswith("aux") for k in state))
        model.load_state_dict(state)  # copies into the fp32 parameters, widening fp16
        return model.eval()
    import fasterseg

    return fasterseg.load_model(spec).eval()


def plot(results: list[dict], split: str, size: str, path: Path) -> None:
    """The Pareto plot: two panels, end to end (what a user waits for) and the network alone (what the
    search optimised; the full-resolution resize and argmax are the same for every network and dilute
    the ratio), on the first deploy path timed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fasterseg.utils.io import save_figure

    first_path = next(iter(results[0]["timing"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, key, what in zip(axes, ("end_to_end_ms", "model_only_ms"), ("end to end", "model only")):
        for r in results:
            ms = r["timing"][first_path][key]
            if ms:
                ax.scatter(ms, 100 * r["mIoU"])
                ax.annotate(r["name"], (ms, 100 * r["mIoU"]), textcoords="offset points", xytext=(4, 4))
        ax.margins(x=0.2, y=0.1)  # room for the names beside the rightmost and topmost points
        ax.set_xlabel(f"latency, {first_path}, {size}, {what} (ms)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{split} mIoU (%)")
    fig.suptitle("latency vs held-out accuracy (up and left is better)")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)  # a killed run leaves the previous plot, not half of a new one


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", action="append", metavar="NAME=SPEC")
    what.add_argument("--replot", metavar="COMPARE.json", help="only redraw pareto.png beside an earlier compare.json")
    p.add_argument("--data", default="camvid:../shared/data/camvid")
    p.add_argument("--split", default="seq_val")
    p.add_argument("--size", default="360x480")
    p.add_argument("--backend", nargs="+", default=["openvino:bf16", "onnxruntime:fp32"], metavar="BACKEND:PRECISION")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", default="runs/compare")
    args = p.parse_args()
    if args.replot:
        record = json.loads(Path(args.replot).read_text())
        size = "x".join(str(v) for v in record["size"])
        plot(record["results"], record["split"], size, Path(args.replot).with_name("pareto.png"))
        print(f"wrote {Path(args.replot).with_name('pareto.png')}")
        return

    from fasterseg.commands.common import parse_size
    from fasterseg.data.registry import build_dataset
    from fasterseg.distributed import DistInfo
    from fasterseg.infer.bench import bench_models
    from fasterseg.utils.env import environment
    from fasterseg.infer.runners import RunnerOptions
    from fasterseg.train.trainer import evaluate_model
    from fasterseg.utils.io import atomic_write_text

    torch.set_num_threads(args.threads)
    size = parse_size(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = build_dataset(args.data, args.split)
    models, results = {}, []
    for item in args.model:
        name, _, spec = item.partition("=")
        model = models[name] = load(spec)
        print(f"{name}: scoring on {args.split}", file=sys.stderr, flush=True)
        scores = evaluate_model(model, dataset, dataset.info, torch.device("cpu"), DistInfo(), show_progress=False)
        params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("aux", "heads16", "heads32")))
        results.append({"name": name, "spec": spec, "mIoU": scores["mIoU"], "IoU": scores["IoU"], "parameters": params})
    paths = [RunnerOptions(b.split(":")[0], precision=b.split(":")[1], threads=args.threads, compile=False)
             for b in args.backend]
    timed = bench_models(models, paths, size, warmup=args.warmup, repeats=args.repeats,
                         progress=lambda line: print(line, file=sys.stderr, flush=True))
    for r in results:
        r["timing"] = {row.path: {"end_to_end_ms": row.end_to_end.median_ms if row.end_to_end else None,
                                  "model_only_ms": row.model_only.median_ms if row.model_only else None,
                                  "error": row.error}
                       for row in timed[r["name"]]}
    env = environment()
    record = {"command": shlex.join(["python", "benchmarks/baselines/compare.py", *sys.argv[1:]]), "environment": env,
              "split": args.split, "size": list(size), "results": results}
    atomic_write_text(out / "compare.json", json.dumps(record, indent=2) + "\n")

    lines = [f"command: {record['command']}", f"device: {env['cpu']}, {args.threads} threads, {env['date']}", "",
             "| model | parameters (M) | " + " | ".join(f"{path} end-to-end / model-only ms" for path in results[0]["timing"])
             + f" | {args.split} mIoU | " + " | ".join(results[0]["IoU"]) + " |",
             "|---|---|" + "---|" * len(results[0]["timing"]) + "---|" + "---|" * len(results[0]["IoU"])]
    for r in results:
        cells = [f"{t['end_to_end_ms']:.1f} / {t['model_only_ms']:.1f}" if t["end_to_end_ms"] else "-" for t in r["timing"].values()]
        ious = [f"{100 * v:.1f}" if v is not None else "-" for v in r["IoU"].values()]
        lines.append(f"| {r['name']} | {r['parameters'] / 1e6:.2f} | " + " | ".join(cells) + f" | {100 * r['mIoU']:.1f} | "
                     + " | ".join(ious) + " |")
    table = "\n".join(lines)
    atomic_write_text(out / "compare.md", table + "\n")
    print(table)

    plot(results, args.split, args.size, out / "pareto.png")
    print(f"wrote {out / 'compare.json'}, {out / 'compare.md'}, {out / 'pareto.png'}")


if __name__ == "__main__":
    main()
