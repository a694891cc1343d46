"""Latency of deploy paths: warm-up, device synchronisation, median and p90 over repeats.

Two numbers per runner: end to end (a normalised input batch on the device -> int64 label
map at input size, i.e. network + x8 bilinear upsample + argmax) and model-only (the network
to its 1/8 class scores). Runners are timed in interleaved rounds on the same input in one
process, so their ratios stay comparable on a shared, noisy machine.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch

from fasterseg.errors import BackendUnavailable
from fasterseg.infer.runners import RunnerOptions, build_runner
from fasterseg.utils.env import environment
from fasterseg.utils.timing import wall_timer


@dataclass
class Timing:
    median_ms: float
    p90_ms: float
    repeats: int

    @classmethod
    def of(cls, seconds: list[float]) -> "Timing":
        ordered = sorted(seconds)
        p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
        return cls(1000 * statistics.median(ordered), 1000 * p90, len(ordered))


@dataclass
class BenchRow:
    backend: str
    path: str
    device: str
    precision: str
    batch: int
    size: tuple[int, int]
    end_to_end: Timing | None = None
    model_only: Timing | None = None
    setup_s: float | None = None
    agreement: float | None = None  # fraction of pixels whose label equals the first path's
    error: str | None = None

    @property
    def fps(self) -> float | None:
        return self.batch * 1000 / self.end_to_end.median_ms if self.end_to_end else None

    @property
    def labels_ms(self) -> float | None:
        """What turning the 1/8 scores into the label map costs: end-to-end minus model-only medians."""
        if self.end_to_end is None or self.model_only is None:
            return None
        return self.end_to_end.median_ms - self.model_only.median_ms


def bench_backends(model: torch.nn.Module, option_list: list[RunnerOptions], size: tuple[int, int], batch: int = 1,
                   warmup: int = 3, repeats: int = 20, model_only: bool = True, seed: int = 0,
                   progress: Callable[[str], None] | None = None) -> list[BenchRow]:
    """Time every runner in ``option_list`` on one random normalised batch; unavailable ones get an error row.

    Each row also records how many of its labels equal the first path's (eager fp32 first makes
    that the "same predictions" check at the benchmark size).

    All runners are built first; then each timed round runs every runner once, in turn. On a
    shared machine whose load drifts, this keeps the comparison fair: a busy minute slows every
    path alike instead of whichever happened to be running.
    """
    return bench_models({"": model}, option_list, size, batch=batch, warmup=warmup, repeats=repeats,
                        model_only=model_only, seed=seed, progress=progress)[""]


def bench_models(models: dict[str, torch.nn.Module], option_list: list[RunnerOptions], size: tuple[int, int],
                 batch: int = 1, warmup: int = 3, repeats: int = 20, model_only: bool = True, seed: int = 0,
                 progress: Callable[[str], None] | None = None) -> dict[str, list[BenchRow]]:
    """``bench_backends`` for several networks at once: every (network, path) runner in the same rounds.

    Comparing networks is the same problem as comparing paths: timed one after the other, a load
    change between them would show up as a speed difference, so every round runs every runner of
    every network once. Agreement is against each network's own first path.
    """
    generator = torch.Generator().manual_seed(seed)
    x_cpu = torch.randn(batch, 3, *size, generator=generator)
    rows: dict[str, list[BenchRow]] = {name: [] for name in models}
    runners = []
    for index, (name, model) in enumerate(models.items()):
        reference = None
        for options in option_list:
            if options.onnx_dir is not None and len(models) > 1:  # a graph folder holds one model's graphs
                options = replace(options, onnx_dir=options.onnx_dir / f"model{index}")
            row = BenchRow(options.backend, options.describe(), options.device, options.precision, batch, tuple(size))
            rows[name].append(row)
            if progress:
                progress(f"preparing {name + ': ' if name else ''}{row.path}")
            try:
                start = time.perf_counter()
                options.extra.setdefault("example_size", tuple(size))
                runner = build_runner(model, options)
                x = x_cpu.to(runner.device)
                labels = runner.labels(x).cpu()  # the first call compiles/exports/captures: count it as setup
                if reference is None:
                    reference = labels
                row.agreement = float((labels == reference).double().mean())
                if model_only:
                    runner.logits8(x)
                runner.synchronize()
                row.setup_s = time.perf_counter() - start
                runners.append((row, runner, x))
            except BackendUnavailable as exc:
                row.error = str(exc)
    stages = [("end_to_end", lambda r, x: r.labels(x))]
    if model_only:
        stages.append(("model_only", lambda r, x: r.logits8(x)))
    jobs = [(row, runner, x, stage, call) for row, runner, x in runners for stage, call in stages]
    if progress and jobs:
        progress(f"timing {len(runners)} runner(s), {len(stages)} stage(s): {warmup} warm-up + {repeats} interleaved rounds")
    seconds: list[list[float]] = [[] for _ in jobs]
    timers = [wall_timer(runner.synchronize) for _, runner, _, _, _ in jobs]
    for round_index in range(warmup + repeats):
        for i, (_, runner, x, _, call) in enumerate(jobs):
            ms = timers[i](lambda: call(runner, x))
            if round_index >= warmup:
                seconds[i].append(ms / 1000)
    for (row, _, _, stage, _), times in zip(jobs, seconds):
        setattr(row, stage, Timing.of(times))
    return rows


def _by_model(rows: list[BenchRow] | dict[str, list[BenchRow]]) -> dict[str, list[BenchRow]]:
    return rows if isinstance(rows, dict) else {"": rows}


def format_table(rows: list[BenchRow] | dict[str, list[BenchRow]]) -> str:
    """A markdown table, one line per runner (and network, given ``bench_models``' dict of several);
    speed-up relative to the first timed row, so across networks it compares them too."""
    by_model = _by_model(rows)
    named = len(by_model) > 1
    header = (("| model " if named else "") + "| path | device | batch | size | end-to-end median ms | p90 ms | FPS | "
              "model-only median ms | p90 ms | label map ms | speed-up | labels = first row | setup s |\n"
              + ("|---" if named else "") + "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    base = next((r.end_to_end.median_ms for rs in by_model.values() for r in rs if r.end_to_end), None)
    lines = [header]
    for name, model_rows in by_model.items():
        lead = f"| {name} " if named else ""
        for r in model_rows:
            size = f"{r.size[0]}x{r.size[1]}"
            if r.error:
                lines.append(f"{lead}| {r.path} | {r.device} | {r.batch} | {size} | unavailable: {r.error} |  |  |  |  |  |  |  |  |")
                continue
            low = r.model_only
            lines.append(
                f"{lead}| {r.path} | {r.device} | {r.batch} | {size} | {r.end_to_end.median_ms:.1f} | {r.end_to_end.p90_ms:.1f} | "
                f"{r.fps:.2f} | " + (f"{low.median_ms:.1f} | {low.p90_ms:.1f} | {r.labels_ms:.1f} | " if low else "- | - | - | ")
                + f"{base / r.end_to_end.median_ms:.2f}x | {100 * r.agreement:.4f}% | {r.setup_s:.1f} |")
    return "\n".join(lines)


def rows_to_json(rows: list[BenchRow] | dict[str, list[BenchRow]], env: dict | None = None) -> str:
    """The rows as JSON; with ``bench_models``' dict each row also names its ``model``."""
    items = []
    for name, model_rows in _by_model(rows).items():
        for r in model_rows:
            item = ({"model": name} if isinstance(rows, dict) else {}) | asdict(r)
            item["size"] = list(r.size)
            item["fps"] = r.fps
            item["labels_ms"] = r.labels_ms
            items.append(item)
    return json.dumps({"environment": env or environment(), "results": items}, indent=2)
