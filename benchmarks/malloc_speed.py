"""A CPU training step with glibc's default malloc against ``keep_freed_memory`` (fasterseg.utils.memory).

The setting is process-wide and cannot be undone, so each measurement is its own process; the two
alternate round by round, so a busy machine's drift falls on both alike. A step is the trainer's
(bf16 autocast where the CPU has it, channels_last, the class-weighted cross-entropy at full
resolution, Adam), on random images of the given size:

    OMP_NUM_THREADS=1 python benchmarks/malloc_speed.py --rounds 4 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

DEFAULT_GENOTYPE = "benchmarks/results/camvid_cpu_search/student.json"


def _child(args: argparse.Namespace) -> None:
    import torch

    from fasterseg.genotype import Genotype
    from fasterseg.losses import OhemCrossEntropy, segmentation_loss
    from fasterseg.nets.network import FasterSegNet, init_weights
    from fasterseg.utils.device import bf16_supported
    from fasterseg.utils.memory import keep_freed_memory

    applied = keep_freed_memory() if args.child == "keep" else False
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    genotype = Genotype.load(args.genotype)
    net = FasterSegNet(genotype, aux_heads=False)
    init_weights(net)
    net = net.train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    criterion = OhemCrossEntropy(min_kept=0, class_weight=torch.rand(genotype.num_classes) + 0.5)
    height, width = args.size
    images = torch.randn(args.batch, 3, height, width).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, genotype.num_classes, (args.batch, height, width))
    bf16 = bf16_supported(torch.device("cpu"))
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = segmentation_loss(net(images), labels, criterion, 0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    print(json.dumps({"setting": args.child, "applied": applied, "step_s": statistics.median(times),
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds; each runs both settings once")
    p.add_argument("--steps", type=int, default=6, help="timed steps per process (the median is kept)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=lambda s: tuple(int(v) for v in s.split("x")), default=(360, 480), help="HxW")
    p.add_argument("--genotype", default=DEFAULT_GENOTYPE)
    p.add_argument("--child", choices=("system", "keep"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    results: dict[str, list[dict]] = {"system": [], "keep": []}
    base = [sys.executable, os.path.abspath(__file__), "--steps", str(args.steps), "--warmup", str(args.warmup),
            "--threads", str(args.threads), "--batch", str(args.batch), "--size", f"{args.size[0]}x{args.size[1]}",
            "--genotype", args.genotype]
    for _ in range(args.rounds):
        for setting in results:
            done = subprocess.run([*base, "--child", setting], capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"the {setting} process failed:\n{done.stderr[-2000:]}")
            results[setting].append(json.loads(done.stdout.strip().splitlines()[-1]))
    system = statistics.median(r["step_s"] for r in results["system"])
    print(f"batch {args.batch} of {args.size[0]}x{args.size[1]}, {args.threads} thread(s), {args.rounds} rounds, "
          f"medians of {args.steps} steps per process")
    print("| malloc | applied | s/step (median of rounds) | per round | peak RSS MB | vs system |")
    print("|---|---|---|---|---|---|")
    for setting, rows in results.items():
        step = statistics.median(r["step_s"] for r in rows)
        rounds = " ".join(f"{r['step_s']:.3f}" for r in rows)
        rss = max(r["max_rss_mb"] for r in rows)
        print(f"| {setting} | {all(r['applied'] for r in rows) if setting == 'keep' else '-'} | {step:.3f} | {rounds} "
              f"| {rss:.0f} | {system / step:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
