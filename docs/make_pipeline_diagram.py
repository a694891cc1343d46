"""Draw docs/images/pipeline.png: the FasterSeg pipeline and the command behind each step.

Run from the repository root: ``python docs/make_pipeline_diagram.py``. The picture is
generated rather than drawn by hand so that it can be regenerated when a command changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent / "images" / "pipeline.png"

# (column, row, title, command, colour); stages of one phase share a colour.
SEARCH, TRAIN, USE, DATA = "#dbe9f6", "#e3f1dc", "#fbe8d3", "#eeeeee"
BOXES = {
    "data": (0, 1, "dataset", "cityscapes: camvid:\nfolder: synth:", DATA),
    "lut": (2, 0, "latency table", "lut build\nlut import-official", SEARCH),
    "pretrain": (1, 1, "pretrain supernet", "search\n(phase 1)", SEARCH),
    "cosearch": (2, 1, "co-search T + S", "search\n(phase 2)", SEARCH),
    "genotypes": (3, 1, "genotypes", "RUN/teacher.json\nRUN/student.json\n(or import-official)", SEARCH),
    "teacher": (4, 1.55, "train teacher", "train --genotype T", TRAIN),
    "student": (4, 0.45, "train student", "train --genotype S\n--teacher T (distil)", TRAIN),
    "eval": (5, 1, "evaluate", "eval --model\neval --pred-dir", USE),
    "use": (6, 1, "deploy", "predict  export\nbench  info", USE),
}
ARROWS = [("data", "pretrain"), ("lut", "cosearch"), ("pretrain", "cosearch"), ("cosearch", "genotypes"),
          ("genotypes", "teacher"), ("genotypes", "student"), ("teacher", "student"), ("student", "eval"),
          ("eval", "use")]
W, H, DX, DY = 2.05, 0.9, 2.4, 1.3


def centre(name: str) -> tuple[float, float]:
    col, row = BOXES[name][:2]
    return col * DX, row * DY


def draw(out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(15, 4.2))
    for name, (col, row, title, command, colour) in BOXES.items():
        x, y = centre(name)
        ax.add_patch(FancyBboxPatch((x - W / 2, y - H / 2), W, H, boxstyle="round,pad=0.03",
                                    facecolor=colour, edgecolor="#444444", linewidth=1))
        ax.text(x, y + 0.24, title, ha="center", va="center", fontsize=9.5, weight="bold")
        ax.text(x, y - 0.13, command, ha="center", va="center", fontsize=7.5, family="monospace")
    for a, b in ARROWS:
        (xa, ya), (xb, yb) = centre(a), centre(b)
        if abs(xa - xb) < 1e-6:  # same column: vertical arrow between box edges
            start, end = (xa, ya - H / 2 * (1 if ya > yb else -1)), (xb, yb + H / 2 * (1 if ya > yb else -1))
        else:
            start, end = (xa + W / 2, ya), (xb - W / 2, yb)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color="#444444",
                                     connectionstyle="arc3,rad=0.0"))
    for label, colour, x in (("search", SEARCH, 0), ("train", TRAIN, 2.4), ("evaluate and deploy", USE, 4.8)):
        ax.add_patch(FancyBboxPatch((x - 0.9, -0.95), 0.35, 0.22, boxstyle="square,pad=0", facecolor=colour,
                                    edgecolor="#444444"))
        ax.text(x - 0.45, -0.84, label, va="center", fontsize=9)
    ax.text(6 * DX + W / 2, -0.84, "fasterseg <command>;  fasterseg demo runs them all", ha="right",
            va="center", fontsize=8, style="italic")
    ax.set_xlim(-W / 2 - 0.1, 6 * DX + W / 2 + 0.1)
    ax.set_ylim(-1.05, 1.55 * DY + H / 2 + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(f"wrote {draw(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)}")
