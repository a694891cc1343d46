"""Are a pretrained supernet's swinging scores its weights or its batch-norm statistics?

Scores the first architecture at full width on the first ``--val`` validation frames (as the
search logs it, with the running statistics), then re-estimates every batch norm's statistics as
a plain average over ``--batches`` batches of 8 training crops at full width (no weight changes)
and scores again. A large gain says the logged scores understate what the weights can do.

    python benchmarks/supernet_bn_check.py runs/camvid_cpu_search_learn [--batches 20] [--val 50]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def main() -> int:
    from safetensors.torch import load_file
    from torch.utils.data import Subset

    from fasterseg.config import load_config
    from fasterseg.data.registry import build_dataset
    from fasterseg.data.transforms import EvalTransform
    from fasterseg.search.config import SearchJobConfig
    from fasterseg.search.data import SearchTransform
    from fasterseg.search.epoch import evaluate_outputs
    from fasterseg.space.supernet import Supernet

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a fasterseg search run folder whose pretrain/weights.safetensors to check")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--val", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    job = load_config(SearchJobConfig, f"{args.run}/config.yaml")
    arch = job.supernet.archs[0].name
    net = Supernet(job.supernet)
    net.load_state_dict(load_file(f"{args.run}/pretrain/weights.safetensors"))
    down = job.pretrain.downsample
    val = build_dataset(job.data, job.val_split, EvalTransform(downsample=down))
    val = Subset(val, range(min(args.val, len(val))))

    def report(what: str) -> None:
        start = time.perf_counter()
        scores = evaluate_outputs(net, arch, val, "max")
        print(f"{what}: " + " / ".join(f"{100 * s:.1f}" for s in scores) + f" ({time.perf_counter() - start:.0f} s)",
              flush=True)

    report("running statistics (as logged)")
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches below
    train = build_dataset(job.data, job.train_split if isinstance(job.train_split, str) else job.train_split[0])
    transform = SearchTransform(job.pretrain.crop, job.pretrain.scales, down)
    g = torch.Generator().manual_seed(0)
    net.train()
    with torch.no_grad():
        for _ in range(args.batches):
            crops = [transform(*train[int(torch.randint(len(train), (1,), generator=g))], g)[0] for _ in range(8)]
            net(torch.stack(crops), arch, "max")
    report(f"statistics re-estimated on {args.batches} x 8 training crops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
