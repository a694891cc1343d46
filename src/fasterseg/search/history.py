"""Every search epoch's derived networks, kept so a user can pick one after the run.

Different epochs of one search derive different networks, and the one at the last epoch is not
always the best (the official maintainers advise looking at the architectures over the epochs).
Each epoch of the search phase writes ``history/epoch_NNN_<arch>.json``: the derived genotype,
the supernet's val mIoU of its outputs, both pairings' table latency, the latency weight the
epoch trained with and the FPS window. :func:`pick` chooses one epoch by number or by a rule;
:func:`plot_evolution` draws how the ops and paths moved.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from fasterseg.errors import HistoryError
from fasterseg.genotype import Genotype
from fasterseg.utils.io import atomic_write_text

HISTORY_DIR = "history"
_NAME = re.compile(r"epoch_(\d{3,})_(\w+)\.json$")
RULES = ("last", "best-miou", "best-miou-in-window")


@dataclass
class EpochEntry:
    epoch: int  # counted from 1
    arch: str
    genotype: Genotype
    miou: dict[str, float]
    latency_ms: dict[str, float]
    latency_weight: float | None
    fps_window: tuple[float, float] | None
    path: Path

    @property
    def fps(self) -> float:
        """Table FPS of the chosen pairing (the derived genotype's)."""
        ends = "_".join(str(2 ** (e + 3)) for e in sorted(self.genotype.ends))
        ms = self.latency_ms.get(ends) or min(self.latency_ms.values())
        return 1000.0 / ms

    @property
    def in_window(self) -> bool | None:
        """Whether its table FPS is inside the FPS window (None: no window, as for the teacher)."""
        return None if not self.fps_window else self.fps_window[0] <= self.fps <= self.fps_window[1]

    @property
    def best_miou(self) -> float:
        return max(self.miou.values())


def record_epoch(run_dir: Path, epoch: int, arch: str, genotype: Genotype, miou: dict, latency_ms: dict,
                 latency_weight: float | None, fps_window: tuple[float, float] | None) -> Path:
    path = Path(run_dir) / HISTORY_DIR / f"epoch_{epoch + 1:03d}_{arch}.json"
    data = {"epoch": epoch + 1, "arch": arch, "genotype": genotype.to_dict(), "miou": miou, "latency_ms": latency_ms,
            "latency_weight": latency_weight, "fps_window": list(fps_window) if fps_window else None}
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return path


def read_history(search_dir: Path) -> dict[str, list[EpochEntry]]:
    """Per architecture, its epochs in order."""
    folder = Path(search_dir) / HISTORY_DIR
    if not folder.is_dir():
        raise HistoryError(f"{folder}: no search history here (a search phase writes it, one file per epoch)")
    out: dict[str, list[EpochEntry]] = {}
    for path in sorted(folder.glob("epoch_*.json")):
        if not _NAME.search(path.name):
            continue
        try:
            data = json.loads(path.read_text())
            entry = EpochEntry(int(data["epoch"]), data["arch"], Genotype.from_dict(data["genotype"], source=str(path)),
                               data["miou"], data["latency_ms"], data.get("latency_weight"),
                               tuple(data["fps_window"]) if data.get("fps_window") else None, path)
            for key, value in (("miou", entry.miou), ("latency_ms", entry.latency_ms)):
                if not isinstance(value, dict) or not value or not all(isinstance(v, (int, float)) for v in value.values()):
                    raise ValueError(f"'{key}' must map outputs to numbers, got {value!r}")
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise HistoryError(f"{path}: not a search history entry ({exc})") from None
        out.setdefault(entry.arch, []).append(entry)
    if not out:
        raise HistoryError(f"{folder}: holds no epoch_NNN_<arch>.json entries")
    for entries in out.values():
        entries.sort(key=lambda e: e.epoch)
    return out


def pick(history: dict[str, list[EpochEntry]], epoch: int | None = None, rule: str = "last") -> dict[str, EpochEntry]:
    """Per architecture the entry of ``epoch``, or the one ``rule`` picks: ``last``;
    ``best-miou`` (highest supernet val mIoU of its outputs); ``best-miou-in-window`` (the same
    among epochs whose table FPS is inside the FPS window, else the closest to it)."""
    chosen = {}
    for arch, entries in history.items():
        if epoch is not None:
            match = [e for e in entries if e.epoch == epoch]
            if not match:
                raise HistoryError(f"no epoch {epoch} for {arch}; recorded: {entries[0].epoch}..{entries[-1].epoch}")
            chosen[arch] = match[0]
        elif rule == "last":
            chosen[arch] = entries[-1]
        elif rule == "best-miou":
            chosen[arch] = max(entries, key=lambda e: (e.best_miou, e.epoch))
        elif rule == "best-miou-in-window":
            inside = [e for e in entries if e.in_window]
            if inside:
                chosen[arch] = max(inside, key=lambda e: (e.best_miou, e.epoch))
            elif entries[0].fps_window:  # none inside: the one closest to the window
                lo, hi = entries[0].fps_window
                chosen[arch] = min(entries, key=lambda e: (max(lo - e.fps, e.fps - hi, 0.0), -e.best_miou))
            else:  # no window for this architecture (the teacher): accuracy alone
                chosen[arch] = max(entries, key=lambda e: (e.best_miou, e.epoch))
        else:
            raise HistoryError(f"unknown rule {rule!r}; choose from {', '.join(RULES)}")
    return chosen


def op_colours(n: int) -> list[str]:
    """One distinct colour per operator, in the alpha order: grey for ``skip``, then the
    qualitative tab10/tab20 colours, so a sixth operator gets a colour and a legend entry of its own."""
    import matplotlib

    base = ["#dddddd", "#1f77b4", "#2ca02c", "#d62728", "#9467bd"]
    more = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab20"].colors]
    colours = base + [c for c in more if c not in base]
    if n > len(colours):
        raise ValueError(f"{n} operators: the evolution plot has {len(colours)} distinct colours")
    return colours[:n]


def plot_evolution(entries: list[EpochEntry], out: Path) -> Path:
    """One row per epoch: each branch's op per cell (colour) and scale (letter), with the epoch's
    table FPS and best val mIoU beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from fasterseg.layers.ops import OP_NAMES
    from fasterseg.utils.io import save_figure

    colors = op_colours(len(OP_NAMES))
    n_branches = max(len(e.genotype.branches) for e in entries)
    n_layers = max(len(b.ops) for e in entries for b in e.genotype.branches)
    fig, axes = plt.subplots(1, n_branches, figsize=(1.2 + 0.45 * n_layers * n_branches + 2.5, 1.2 + 0.32 * len(entries)),
                             squeeze=False)
    for b in range(n_branches):
        ax = axes[0][b]
        grid = [[-1] * n_layers for _ in entries]
        for row, e in enumerate(entries):
            if b < len(e.genotype.branches):
                branch = e.genotype.branches[b]
                for layer, op in enumerate(branch.ops):
                    grid[row][layer] = OP_NAMES.index(op)
                    ax.text(layer, row, "abc"[branch.path[layer]], ha="center", va="center", fontsize=7)
        masked = [[v if v >= 0 else float("nan") for v in r] for r in grid]
        ax.imshow(masked, cmap=ListedColormap(colors), vmin=0, vmax=len(colors) - 1, aspect="auto")
        ax.set_xticks(range(n_layers))
        ax.set_yticks(range(len(entries)), [f"{e.epoch}" for e in entries] if b == 0 else [])
        ax.set_xlabel("cell")
        ends = {1 / 2 ** (e.genotype.branches[b].end + 3) for e in entries if b < len(e.genotype.branches)}
        ax.set_title(f"branch {b + 1}" + (f" (to 1/{int(1 / ends.pop())})" if len(ends) == 1 else ""), fontsize=9)
    axes[0][0].set_ylabel("epoch")
    right = axes[0][-1]
    for row, e in enumerate(entries):
        right.text(n_layers - 0.3, row, f"  {e.fps:.0f} FPS, {100 * e.best_miou:.1f}", va="center", fontsize=7)
    fig.legend(handles=[Patch(color=c, label=op) for op, c in zip(OP_NAMES, colors)] +
               [Patch(color="#ffffff", label="letters: scale a=1/8 b=1/16 c=1/32")],
               loc="lower center", ncol=len(OP_NAMES) + 1, fontsize=7, frameon=False)
    fig.suptitle(f"{entries[0].arch}: derived network per search epoch (table FPS, val mIoU)", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 0.9, 0.95))
    return save_figure(fig, out, dpi=110)
