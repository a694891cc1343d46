"""Supernet throughput of the CamVid CPU search (configs/search/camvid_cpu.yaml): crop pixels per
second over pretraining steps and search steps, the code and settings of commit 9605960 against
each lever, interleaved round by round in one process so that a noisy machine slows them alike.

Each setting builds the search space of the config, its optimisers and OHEM criterion, and times
``fasterseg.search.steps.search_step`` (a pretraining step, or an architecture step plus a weight
step) on random crops of the phase's size, in bf16 autocast where the CPU has it, as the search
runs it. "9605960" slices slimmable conv weights with plain indexing (autograd then hands back a
zero-filled full-size gradient per use, as the code did before); that forward is kept here, in
the benchmark only, to measure it. The first round is a warm-up and is not counted.

    python benchmarks/supernet_speed.py [--rounds 3] [--threads 2] [--only TEXT ...] [--json F] [--md F]

``--only`` keeps the settings whose name contains any of the given texts (the 9605960 reference is
always kept, since every ratio is read against it). The last setting, without channels_last, is
there for CPUs where oneDNN's blocked layout does not pay (AVX2 only, in fp32).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "search" / "camvid_cpu.yaml"


@dataclass(frozen=True)
class Setting:
    name: str
    batch: int
    in_place_slices: bool
    channels_last: bool
    crop_factor: int = 1  # the config's crop, this many times taller and wider


SETTINGS = [
    Setting("9605960: batch 4, plain weight slices", 4, False, False),
    Setting("batch 4, slice gradients added in place", 4, True, False),
    Setting("batch 4, in place, channels_last", 4, True, True),
    Setting("batch 16, in place, channels_last", 16, True, True),
    Setting("batch 32, in place, channels_last", 32, True, True),
    Setting("batch 8 of 2x crops, in place, channels_last", 8, True, True, 2),
    Setting("batch 8 of 2x crops, in place, contiguous", 8, True, False, 2),
]


def _plain_slice_forward(self, x: torch.Tensor) -> torch.Tensor:
    """SlimConv2d.forward as of 9605960: autograd's slice backward (zero-filled full-size gradients)."""
    weight = self.weight[: self.active_out, : x.shape[1]]
    return F.conv2d(x, weight, None, self.stride, self.padding, self.dilation, self.groups)


class Bench:
    """One setting's supernet, optimisers and batch, ready to time a step of either phase."""

    def __init__(self, setting: Setting, job, amp_dtype):
        from fasterseg.losses import OhemCrossEntropy
        from fasterseg.search.steps import make_optimisers
        from fasterseg.space.supernet import Supernet

        torch.manual_seed(0)
        self.setting, self.amp_dtype = setting, amp_dtype
        self.net = Supernet(job.supernet)
        if setting.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.opt = make_optimisers(self.net, job.search.lr)
        self.criterion = OhemCrossEntropy(job.search.ohem_thresh, across_processes=True)
        self.crop = tuple(c * setting.crop_factor for c in job.search.crop)
        self.classes = job.supernet.num_classes

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.crop
        images = torch.randn(self.setting.batch, 3, h, w)
        if self.setting.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, torch.randint(0, self.classes, (self.setting.batch, h // 8, w // 8))

    def step(self, pretrain: bool) -> float:
        from fasterseg.layers.slimmable import SlimConv2d
        from fasterseg.search.steps import search_step

        original = SlimConv2d.forward
        if not self.setting.in_place_slices:
            SlimConv2d.forward = _plain_slice_forward
        try:
            w, a = self.batch(), self.batch()
            latency = {"student": 0.01}
            start = time.perf_counter()
            search_step(self.net, self.opt, self.criterion, w, None if pretrain else a, pretrain,
                        latency_fn=_zero_latency, latency_weights=latency, amp_dtype=self.amp_dtype)
            return time.perf_counter() - start
        finally:
            SlimConv2d.forward = original


def _zero_latency(net, arch: str) -> torch.Tensor:
    """A latency term that touches the architecture parameters (so their step runs) and adds 0."""
    return sum(p.sum() for p in net.arch_parameters(arch)) * 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds, the first one a warm-up (default 3)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--only", nargs="+", default=None, metavar="TEXT",
                   help="time only the settings whose name contains one of these (and the 9605960 reference)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--md", type=Path, default=None)
    args = p.parse_args()
    settings = [s for i, s in enumerate(SETTINGS) if i == 0 or not args.only or any(t in s.name for t in args.only)]
    torch.set_num_threads(args.threads)
    from fasterseg.config import load_config
    from fasterseg.search.config import SearchJobConfig
    from fasterseg.utils.device import resolve_precision

    job = load_config(SearchJobConfig, CONFIG)
    precision = resolve_precision("auto", torch.device("cpu"), note=lambda _: None)
    amp_dtype = torch.bfloat16 if precision == "bf16" else None
    benches = [Bench(s, job, amp_dtype) for s in settings]
    times = {(s.name, phase): [] for s in settings for phase in ("pretrain", "search")}
    for r in range(args.rounds):
        for bench in benches:
            for phase in ("pretrain", "search"):
                seconds = bench.step(pretrain=phase == "pretrain")
                if r:
                    times[(bench.setting.name, phase)].append(seconds)
                print(f"round {r + 1}/{args.rounds} {bench.setting.name} {phase}: {seconds:.2f} s", file=sys.stderr)
    rows = []
    for s in settings:
        pixels = job.search.crop[0] * job.search.crop[1] * s.crop_factor ** 2
        row = {"setting": s.name, "batch": s.batch, "crop": [c * s.crop_factor for c in job.search.crop]}
        for phase in ("pretrain", "search"):
            median = statistics.median(times[(s.name, phase)])
            row[f"{phase}_s_per_step"] = median
            row[f"{phase}_kpixels_per_s"] = s.batch * pixels / median / 1000
        rows.append(row)
    ref = rows[0]
    lines = ["| setting | pretrain s/step | pretrain kpx/s | search s/step | search kpx/s | vs 9605960 (pretrain / search) |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['setting']} | {row['pretrain_s_per_step']:.2f} | {row['pretrain_kpixels_per_s']:.1f} | "
                     f"{row['search_s_per_step']:.2f} | {row['search_kpixels_per_s']:.1f} | "
                     f"{row['pretrain_kpixels_per_s'] / ref['pretrain_kpixels_per_s']:.2f}x / "
                     f"{row['search_kpixels_per_s'] / ref['search_kpixels_per_s']:.2f}x |")
    header = (f"{date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}, {precision}, "
              f"{args.threads} thread(s), crops {job.search.crop[0]}x{job.search.crop[1]}, "
              f"{args.rounds - 1} counted rounds")
    table = "\n".join(lines)
    print(header)
    print(table)
    if args.md:
        args.md.write_text(header + "\n\n" + table + "\n")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
