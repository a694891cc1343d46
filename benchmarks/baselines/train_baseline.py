"""Train a hand-designed baseline (BiSeNetV2, DDRNet-23-slim) with fasterseg's training recipe.

The same TrainConfig YAML as ``fasterseg train`` (data, splits, crops, photometric jitter, OHEM,
auxiliary weight, SGD with the poly schedule, epochs, bf16/channels_last on CPU), the same data
pipeline (decoded cache, seeded augmentation, sampler) and the same evaluator, so that only the
network differs from a ``fasterseg train`` run. Resumable: a checkpoint is written after every
epoch (``--resume`` continues it). The final weights go to ``model.safetensors`` and the scores
to ``metrics.json``; ``compare.py`` times and tabulates the runs.

    python benchmarks/baselines/train_baseline.py --network bisenetv2 --config configs/train/camvid.yaml \\
        --out runs/baselines/bisenetv2 [--set epochs=60] [--resume]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from networks import WEIGHTS, build  # noqa: E402  (this folder is not a package)

CHECKPOINT = "checkpoint.pt"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True, help="bisenetv2 or ddrnet23slim")
    p.add_argument("--config", required=True, help="a fasterseg training config (configs/train/*.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--threads", type=int, default=None)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    from safetensors.torch import save_file
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from fasterseg.config import load_config, save_config, to_dict
    from fasterseg.data.splits import as_split_list, read_splits
    from fasterseg.data.transforms import EvalTransform, TrainTransform
    from fasterseg.distributed import DistInfo
    from fasterseg.losses import OhemCrossEntropy, segmentation_loss
    from fasterseg.train.config import TrainConfig
    from fasterseg.train.trainer import AugmentedDataset, ShardedEpochSampler, evaluate_model, learning_rate
    from fasterseg.utils.device import resolve_precision
    from fasterseg.utils.env import environment
    from fasterseg.utils.io import atomic_path, atomic_write_text

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(TrainConfig, args.config, args.overrides)
    out = Path(args.out)
    if (out / CHECKPOINT).exists() and not args.resume:
        sys.exit(f"{out} already holds a run; pass --resume to continue it")
    if args.resume and not (out / CHECKPOINT).exists():
        sys.exit(f"{out}: nothing to resume")
    torch.manual_seed(cfg.seed)
    device = torch.device("cpu")
    d = cfg.data
    cache_dir = str(Path(cfg.out_dir) / ".cache" / "data")
    train_base = read_splits(d.spec, as_split_list(d.train_split), cache_dir)
    val_set = read_splits(d.spec, [d.val_split], cache_dir)
    info = train_base.info
    transform = TrainTransform(crop_size=tuple(d.crop_size), scales=tuple(d.scales), flip=d.flip,
                               base_scale=d.base_scale, ignore_index=info.ignore_index, photometric=d.photometric)
    single = DistInfo()
    iters = cfg.iters_per_epoch or max(1, len(train_base) // cfg.batch_size)
    sampler = ShardedEpochSampler(len(train_base), cfg.seed, iters, cfg.batch_size, single)
    loader = DataLoader(AugmentedDataset(train_base, transform, cfg.seed), batch_size=cfg.batch_size, sampler=sampler,
                        num_workers=d.workers, drop_last=True)
    precision = resolve_precision(cfg.precision, device, note=print)
    model = build(args.network, info.num_classes)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                                weight_decay=cfg.optim.weight_decay)
    criterion = OhemCrossEntropy(cfg.loss.ohem_thresh, min_kept_ratio=cfg.loss.ohem_min_kept_ratio,
                                 ignore_index=info.ignore_index)
    start, history = 0, []
    if args.resume:
        state = torch.load(out / CHECKPOINT, weights_only=True)  # our own file: tensors and plain data only
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["next_epoch"], json.loads(state["history"])
    else:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        atomic_write_text(out / "environment.json", json.dumps(environment(), indent=2) + "\n")
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.network}: {params / 1e6:.2f} M parameters, {precision}, {len(train_base)} training images, "
          f"{iters} steps an epoch, epochs {start + 1}..{cfg.epochs}")
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    for epoch in range(start, cfg.epochs):
        sampler.set_epoch(epoch)
        model.train()
        started, total = time.time(), 0.0
        for it, (img, lab) in enumerate(tqdm(loader, total=iters, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, epoch, it, iters)
            if cfg.channels_last:
                img = img.contiguous(memory_format=torch.channels_last)
            with amp:
                loss = segmentation_loss(model(img), lab, criterion, cfg.loss.aux_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            total += loss.item()
        record = {"epoch": epoch + 1, "loss": total / iters, "seconds": round(time.time() - started, 1)}
        if (cfg.val_every and (epoch + 1) % cfg.val_every == 0) or epoch + 1 == cfg.epochs:
            scores = evaluate_model(model, val_set, info, device, single, transform=EvalTransform(scale=d.val_scale),
                                    show_progress=False)
            record["val_mIoU"] = scores["mIoU"]
            record["val_IoU"] = scores["IoU"]
        history.append(record)
        print(json.dumps(record), flush=True)
        with atomic_path(out / CHECKPOINT) as tmp:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "next_epoch": epoch + 1,
                        "history": json.dumps(history)}, tmp)
        with atomic_path(out / "epochs.csv") as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch", "loss", "seconds", "val_mIoU"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(history)
    with atomic_path(out / WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp),
                  metadata={"network": args.network, "num_classes": str(info.num_classes)})
    final = history[-1]  # the last epoch is always scored
    atomic_write_text(out / "metrics.json", json.dumps({
        "network": args.network, "parameters": params, "val_split": d.val_split, "val_mIoU": final["val_mIoU"],
        "per_class_IoU": final["val_IoU"], "history": history, "config": to_dict(cfg)}, indent=2) + "\n")
    print(f"{args.network}: {d.val_split} mIoU {100 * final['val_mIoU']:.2f}; wrote {out / 'metrics.json'}")


if __name__ == "__main__":
    main()
