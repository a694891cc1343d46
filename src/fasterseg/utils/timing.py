"""The one timing harness: warm up, then time repeated calls with a chosen clock.

Latency tables (one operator at a time) and the deploy benchmark time with it; the clocks are
wall time with device synchronisation around the call, the process's CPU time (what a run costs
with its cores to itself on a shared machine), or CUDA events.
"""

from __future__ import annotations

import time
from typing import Callable

Timer = Callable[[Callable[[], object]], float]  # runs the call once, returns milliseconds


def repeat_ms(run: Callable[[], object], timer: Timer, warmup: int, repeats: int, min_time_s: float = 0.0) -> list[float]:
    """``warmup`` untimed calls, then at least ``repeats`` timed ones, more until ``min_time_s``
    has been measured (at most ten times ``repeats``); the milliseconds of each."""
    for _ in range(warmup):
        run()
    samples: list[float] = []
    spent = 0.0
    while len(samples) < repeats or spent < min_time_s:
        ms = timer(run)
        samples.append(ms)
        spent += ms / 1000
        if len(samples) >= 10 * max(repeats, 1):
            break
    return samples


def wall_timer(sync: Callable[[], None] = lambda: None) -> Timer:
    """Elapsed time; ``sync`` (e.g. CUDA synchronise) runs before and after the call, so queued
    device work is neither charged to it nor left out."""
    def timer(run: Callable[[], object]) -> float:
        sync()
        start = time.perf_counter()
        run()
        sync()
        return (time.perf_counter() - start) * 1000
    return timer


def cpu_timer(run: Callable[[], object]) -> float:
    """CPU time of this process (all its threads) during the call."""
    start = time.process_time()
    run()
    return (time.process_time() - start) * 1000


def cuda_event_timer(run: Callable[[], object]) -> float:
    """CUDA events around the call, after synchronising."""
    import torch

    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    run()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)
