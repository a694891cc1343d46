"""Results out: the benchmark-page table, JSON, CSV and plots, all from one result object.

The table follows the layout of the Cityscapes benchmark entry (``Average results``, ``Class
results``, ``Category results``; values in percent, ``-`` where undefined). JSON and CSV keep
fractions, as ``cityscapesscripts`` writes them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from fasterseg.evaluate.cityscapes import CityscapesResult
from fasterseg.evaluate.scorer import Result
from fasterseg.utils.io import atomic_write_text, save_figure

# The benchmark page lists categories in this order.
BENCHMARK_CATEGORY_ORDER = ("flat", "nature", "object", "sky", "construction", "human", "vehicle")


def _pct(v: float) -> str:
    if v is None or math.isnan(v):
        return "-"
    return f"{v * 100:.4f}".rstrip("0").rstrip(".")


def _rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    out = [" | ".join(header) + " |", "|".join("---" for _ in header) + "|"]
    out += [" | ".join(r) + " |" for r in rows]
    return out


def format_table(result: Result) -> str:
    """The text of the benchmark entry's result sections for ``result``."""
    lines = ["Average results"]
    lines += _rows(("Metric", "Value"), [(k, _pct(v)) for k, v in result.averages.items()])
    if isinstance(result, CityscapesResult):
        lines.append("Class results")
        lines += _rows(("Class", "IoU", "iIoU"),
                       [(c, _pct(v), _pct(result.class_iiou[c])) for c, v in result.class_iou.items()])
        lines.append("Category results")
        order = [c for c in BENCHMARK_CATEGORY_ORDER if c in result.category_iou]
        order += [c for c in result.category_iou if c not in order]
        lines += _rows(("Category", "IoU", "iIoU"),
                       [(c, _pct(result.category_iou[c]), _pct(result.category_iiou[c])) for c in order])
    else:
        lines.append("Class results")
        lines += _rows(("Class", "IoU", "Accuracy"),
                       [(c, _pct(v), _pct(result.class_accuracy[c])) for c, v in result.class_iou.items()])
    return "\n".join(lines)


def _num(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def to_json_dict(result: Result) -> dict:
    """Plain data: the averages under the benchmark's names, then per class and per category."""
    data: dict = {"unit": "fraction", "images": result.images,
                  "average": {k: _num(v) for k, v in result.averages.items()}}
    if isinstance(result, CityscapesResult):
        data["average"]["Pixel Accuracy"] = _num(result.pixel_accuracy)
        data["average"]["Mean Accuracy"] = _num(result.mean_accuracy)
        data["classes"] = {c: {"IoU": _num(v), "iIoU": _num(result.class_iiou[c])} for c, v in result.class_iou.items()}
        data["categories"] = {c: {"IoU": _num(v), "iIoU": _num(result.category_iiou[c])}
                              for c, v in result.category_iou.items()}
    else:
        data["classes"] = {c: {"IoU": _num(v), "Accuracy": _num(result.class_accuracy[c])}
                           for c, v in result.class_iou.items()}
    data["confusion"] = {"rows": list(result.column_names[: result.confusion.shape[0]]),
                         "columns": list(result.column_names), "counts": result.confusion.tolist()}
    return data


def write_json(result: Result, path: str | Path) -> Path:
    atomic_write_text(Path(path), json.dumps(to_json_dict(result), indent=2) + "\n")
    return Path(path)


def write_csv(result: Result, path: str | Path) -> Path:
    """One row per number: level (average, class, category), name, metric, value (fraction)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["level", "name", "metric", "value"])
    for k, v in result.averages.items():
        w.writerow(["average", k, "value", "" if math.isnan(v) else repr(float(v))])
    data = to_json_dict(result)
    for level in ("classes", "categories"):
        for name, metrics in data.get(level, {}).items():
            for metric, v in metrics.items():
                w.writerow(["class" if level == "classes" else "category", name, metric, "" if v is None else repr(v)])
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)


def plot_class_iou(result: Result, path: str | Path) -> Path:
    """Horizontal bars of per-class IoU (percent), the mean as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.class_iou)
    values = [0.0 if math.isnan(v) else v * 100 for v in result.class_iou.values()]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(names) + 1.2))
    ax.barh(range(len(names)), values, color="#4c72b0")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.axvline(result.miou * 100, color="#c44e52", linestyle="--", label=f"mean {result.miou * 100:.2f}")
    ax.set_xlim(0, 100)
    ax.set_xlabel("IoU (%)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save_fig(fig, path)


def plot_confusion(result: Result, path: str | Path) -> Path:
    """The confusion matrix normalised per ground-truth row; ignored predictions pooled as 'void'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = result.confusion.astype(np.float64)
    n = m.shape[0]
    names = list(result.column_names[:n])
    if m.shape[1] > n:
        m = np.concatenate([m[:, :n], m[:, n:].sum(1, keepdims=True)], axis=1)
        names_x = names + ["void"]
    else:
        names_x = names
    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    size = 0.35 * len(names_x) + 2
    fig, ax = plt.subplots(figsize=(size, size * n / len(names_x) + 0.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names_x)), names_x, rotation=90)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    return _save_fig(fig, path)


def _save_fig(fig, path: str | Path) -> Path:
    return save_figure(fig, path, dpi=110)
