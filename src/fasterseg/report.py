"""``report.md`` for a demo (or any run folder laid out like one): what was found, how it
trained, how well and how fast it runs, with the plots beside it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fasterseg.utils.io import atomic_write_text


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_training_curves(out: Path, runs: dict[str, Path], path: Path) -> Path | None:
    """Loss per epoch (and validation mIoU where measured) of each training run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fasterseg.utils.io import save_figure

    series = {name: _read_csv(run / "epochs.csv") for name, run in runs.items()}
    if not any(series.values()):
        return None
    fig, (ax_loss, ax_miou) = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, rows in series.items():
        if not rows:
            continue
        epochs = [int(r["epoch"]) for r in rows]
        ax_loss.plot(epochs, [float(r["loss"]) for r in rows], marker="o", label=name)
        val = [(int(r["epoch"]), 100 * float(r["val_mIoU"])) for r in rows if r.get("val_mIoU")]
        if val:
            ax_miou.plot(*zip(*val), marker="s", label=name)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax_miou.set(xlabel="epoch", ylabel="val mIoU (%)", title="validation mIoU")
    for ax in (ax_loss, ax_miou):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def _rel(path: Path, base: Path) -> str:
    return str(path.relative_to(base))


def write_report(out: Path, timings: dict[str, float] | None = None) -> Path:
    from fasterseg.modelfile import load_genotype
    from fasterseg.nets.summary import network_stats, plot_architecture

    out = Path(out)
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    lines = ["# FasterSeg demo report", ""]
    if timings:
        total = sum(timings.values())
        lines += ["## Stages", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| {k} | {v:.0f} |" for k, v in timings.items()] + [f"| **total** | **{total:.0f}** |", ""]

    summary_path = out / "search" / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        lines += ["## Search: the networks found", "",
                  "| network | branches | table latency | table FPS | params | MACs |", "|---|---|---|---|---|---|"]
        for name, info in summary.items():
            genotype = load_genotype(info["genotype"])
            stats = network_stats(genotype, (256, 512))
            ends = ", ".join(f"1/{2 ** (e + 3)}" for e in genotype.ends)
            lines.append(f"| {name} | {ends} | {info['latency_ms']:.2f} ms | {info['fps']:.0f} | {stats.params:,} | "
                         f"{stats.macs / 1e6:.1f} M at 256x512 |")
        lines.append("")
        for name, info in summary.items():
            fig = plot_architecture(load_genotype(info["genotype"]), figures / f"{name}_architecture.png")
            lines += [f"**{name}**", "", f"![{name} architecture]({_rel(fig, out)})", ""]
        log = _read_csv(out / "search" / "search" / "log.csv")
        if log:
            last = log[-1]
            fps = {k: v for k, v in last.items() if k.startswith("fps_") and v}
            lines += ["Last search epoch: " + ", ".join(f"{k} {float(v):.0f}" for k, v in fps.items()), ""]
        evolution = [out / "search" / "search" / f"evolution_{name}.png" for name in summary]
        if any(p.exists() for p in evolution):
            lines += ["How the derived networks moved over the search epochs (any epoch can be taken with "
                      "`fasterseg search --pick RUN --epoch N`):", ""]
            lines += [f"![{p.stem}]({_rel(p, out)})" for p in evolution if p.exists()] + [""]

    runs = {n: out / n for n in ("teacher", "student") if (out / n).exists()}
    curves = plot_training_curves(out, runs, figures / "training.png")
    if curves:
        lines += ["## Training", "", f"![training curves]({_rel(curves, out)})", ""]
        for name, run in runs.items():
            metrics = run / "metrics.json"
            if metrics.exists():
                best = json.loads(metrics.read_text()).get("best_val_mIoU")
                if best is not None:
                    lines.append(f"- {name}: best val mIoU {100 * best:.2f}")
        lines.append("")

    table = out / "eval" / "table.txt"
    if table.exists():
        lines += ["## Evaluation of the student (validation split)", "", "```", table.read_text().strip(), "```", ""]
        for png in ("class_iou.png", "confusion.png"):
            if (out / "eval" / png).exists():
                lines.append(f"![{png}]({_rel(out / 'eval' / png, out)})")
        lines.append("")

    bench = out / "bench.json"
    if bench.exists() and bench.read_text().strip():
        data = json.loads(bench.read_text())
        rows = data.get("results", []) if isinstance(data, dict) else data
        lines += ["## Speed of the student on this CPU", "", "| path | median ms | FPS | labels equal to eager |", "|---|---|---|---|"]
        for r in rows:
            e2e = r.get("end_to_end") or {}
            median = e2e.get("median_ms")
            agree = r.get("agreement")
            lines.append(f"| {r.get('path') or r.get('backend')} | {median:.2f} | {1000 / median:.0f} | "
                         f"{'' if agree is None else f'{100 * agree:.3f} %'} |" if median else
                         f"| {r.get('path') or r.get('backend')} | unavailable: {r.get('error', '')} | | |")
        lines.append("")

    overlays = sorted((out / "predictions" / "overlay").rglob("*.png"))[:4]
    if overlays:
        lines += ["## Predictions (overlays)", ""] + [f"![{p.stem}]({_rel(p, out)})" for p in overlays] + [""]
    if (out / "student.onnx").exists():
        lines += [f"ONNX export: `{_rel(out / 'student.onnx', out)}` (checked against PyTorch with ONNX Runtime).", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
