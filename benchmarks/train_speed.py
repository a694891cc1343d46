"""Training images/s of the official student on CamVid crops: the CPU setting before the fast
path against each new one, interleaved round by round in one process so that a noisy shared
machine slows every setting alike.

Each setting runs the trainer's own pieces (dataset, seeded augmentation, sampler, DataLoader,
model, OHEM loss, SGD step); a round times ``--iters`` whole iterations (loading included) of
every setting in turn after one untimed warm-up iteration. The baseline, "before", is what the
trainer did until the fast path: fp32 NCHW, PNGs decoded every step by one loader process, and
the two-softmax OHEM. The code the trainer no longer runs (the two-softmax OHEM, the fused OHEM
with autograd's backward, ``F.interpolate`` for the heads' upsampling) is kept here, in the
benchmark only, to measure it.

    python benchmarks/train_speed.py [--data camvid:../shared/data/camvid] [--rounds 3] [--iters 8] [--json F]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Setting:
    name: str
    precision: str  # fp32 | bf16
    channels_last: bool
    cache: bool
    workers: int
    loss: str  # two_softmax | autograd (one log-softmax, autograd's backward) | package (the trainer's)
    upsample: str = "interpolate"  # interpolate (F.interpolate) | package (the trainer's matrix products)


SETTINGS = [
    Setting("before: fp32 NCHW, PNG decoding, 1 loader, two-softmax OHEM", "fp32", False, False, 1, "two_softmax"),
    Setting("fp32 NCHW, PNG decoding, 1 loader, fused OHEM", "fp32", False, False, 1, "autograd"),
    Setting("fp32 NCHW, cache, fused OHEM", "fp32", False, True, 0, "autograd"),
    Setting("fp32 channels_last, cache, fused OHEM", "fp32", True, True, 0, "autograd"),
    Setting("bf16 channels_last, PNG decoding, 1 loader, fused OHEM", "bf16", True, False, 1, "autograd"),
    Setting("bf16 channels_last, cache, fused OHEM", "bf16", True, True, 0, "autograd"),
    Setting("bf16 channels_last, cache, fused OHEM, matmul upsample", "bf16", True, True, 0, "autograd", "package"),
    Setting("bf16 channels_last, cache, OHEM with its own backward, matmul upsample (the default)",
            "bf16", True, True, 0, "package", "package"),
]


def two_softmax_ohem(logits, target, thresh=0.7, min_kept=0, ignore_index=255):
    """The trainer's OHEM before the fast path: a float32 softmax to rank, then cross_entropy."""
    target = target.long()
    valid = target != ignore_index
    num_valid = int(valid.sum())
    if 0 < min_kept <= num_valid:
        with torch.no_grad():
            prob = logits.detach().float().softmax(1).gather(1, target.masked_fill(~valid, 0).unsqueeze(1)).squeeze(1)
            prob = prob.masked_fill(~valid, 1.0).flatten()
            threshold = torch.clamp(prob.kthvalue(min(prob.numel(), min_kept)).values, min=thresh)
            target = target.masked_fill(~(valid & (prob <= threshold).view_as(valid)), ignore_index)
    return F.cross_entropy(logits, target, ignore_index=ignore_index)


def autograd_ohem(logits, target, thresh=0.7, min_kept=0, ignore_index=255):
    """The fused OHEM before its hand-written backward: one float32 log-softmax ranks and scores,
    autograd differentiates the log-softmax and the gather."""
    target = target.long()
    valid = target != ignore_index
    log_prob = F.log_softmax(logits.float(), dim=1)
    true_log_prob = log_prob.gather(1, target.masked_fill(~valid, 0).unsqueeze(1)).squeeze(1)
    kept = valid
    if 0 < min_kept <= int(valid.sum()):
        with torch.no_grad():
            prob = true_log_prob.detach().exp().masked_fill(~valid, 1.0).flatten()
            threshold = torch.tensor(thresh)
            if int((prob <= thresh).sum()) < min_kept:
                threshold = torch.clamp(prob.kthvalue(min_kept).values, min=thresh)
            kept = valid & (prob <= threshold).view_as(valid)
    weight = kept.float()
    return -(true_log_prob * weight).sum() / weight.sum().clamp(min=1)


def interpolating_net(genotype):
    """The student whose training outputs are upsampled by ``F.interpolate``, as before the matrix products."""
    from fasterseg.nets.network import FasterSegNet

    class InterpolatingNet(FasterSegNet):
        @staticmethod
        def upsample_scores(scores, scale, crop):
            return F.interpolate(scores, scale_factor=scale, mode="bilinear", align_corners=True)[..., :crop[0], :crop[1]]

    return InterpolatingNet(genotype, aux_heads=True)


class Runner:
    """One setting's model, optimiser and endless loader, built once and stepped per round."""

    def __init__(self, setting: Setting, genotype, data_spec: str, cache_dir: Path, batch: int, crop, seed: int):
        from fasterseg.data.transforms import TrainTransform
        from fasterseg.nets.network import FasterSegNet, init_weights
        from fasterseg.distributed import DistInfo
        from fasterseg.losses import OhemCrossEntropy, segmentation_loss
        from fasterseg.data.splits import read_splits
        from fasterseg.train.trainer import AugmentedDataset, ShardedEpochSampler

        self.setting = setting
        data = read_splits(data_spec, ["train"], str(cache_dir) if setting.cache else None, show_progress=False)
        transform = TrainTransform(crop_size=crop, scales=(0.75, 1.0, 1.25, 1.5))
        sampler = ShardedEpochSampler(len(data), seed, 10_000, batch, DistInfo())
        self.loader = iter(torch.utils.data.DataLoader(AugmentedDataset(data, transform, seed), batch_size=batch,
                                                       sampler=sampler, num_workers=setting.workers, drop_last=True))
        torch.manual_seed(seed)
        genotype = replace(genotype, num_classes=data.info.num_classes)
        model = FasterSegNet(genotype, aux_heads=True) if setting.upsample == "package" else interpolating_net(genotype)
        init_weights(model)
        if setting.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model.train()
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        min_kept = batch * crop[0] * crop[1] // 16
        criteria = {"package": OhemCrossEntropy(0.7, min_kept=min_kept),
                    "autograd": lambda lg, t: autograd_ohem(lg, t, 0.7, min_kept),
                    "two_softmax": lambda lg, t: two_softmax_ohem(lg, t, 0.7, min_kept)}
        criterion = criteria[setting.loss]
        self.loss = lambda outputs, target: segmentation_loss(outputs, target, criterion)

    def step(self) -> int:
        img, lab = next(self.loader)
        if self.setting.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.setting.precision == "bf16"):
            outputs = self.model(img)
            loss = self.loss(outputs, lab)
        float(loss.detach())  # the trainer reads the loss every step
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return img.shape[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=f"camvid:{REPO.parent / 'shared/data/camvid'}")
    p.add_argument("--arch", default=str(REPO.parent / "shared/reference/official/arch_1.pt"),
                   help="official architecture file of the student (or a genotype JSON / model file)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=8, help="timed iterations per setting per round")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", default="288x384")
    p.add_argument("--only", default="", help="comma-separated setting numbers (1-based) to run")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)

    from fasterseg.data.registry import build_dataset
    from fasterseg.utils.device import bf16_supported

    try:
        build_dataset(args.data, "train")
    except Exception as exc:  # noqa: BLE001 - say why and stop, as the other benchmarks do
        sys.exit(f"no training data: {exc}")
    genotype = load_student(Path(args.arch))
    crop = tuple(int(v) for v in args.crop.split("x"))
    settings = [s for i, s in enumerate(SETTINGS, 1) if not args.only or str(i) in args.only.split(",")]
    if not bf16_supported(torch.device("cpu")):
        print("this CPU has no native bf16: the bf16 rows are left out", file=sys.stderr)
        settings = [s for s in settings if s.precision != "bf16"]
    with tempfile.TemporaryDirectory() as tmp:
        runners = [Runner(s, genotype, args.data, Path(tmp) / "cache", args.batch, crop, seed=0) for s in settings]
        for r in runners:
            r.step()  # warm-up: first-call kernel selection, loader start, cache build
        rates: dict[str, list[float]] = {s.name: [] for s in settings}
        for rnd in range(args.rounds):
            for r in runners:
                t0, images = time.perf_counter(), 0
                for _ in range(args.iters):
                    images += r.step()
                rates[r.setting.name].append(images / (time.perf_counter() - t0))
            print(f"round {rnd + 1}/{args.rounds}: " + ", ".join(f"{v[-1]:.1f}" for v in rates.values()), file=sys.stderr)
    base = statistics.median(rates[settings[0].name])
    print(f"\nofficial student, batch {args.batch}, {crop[0]}x{crop[1]} crops, {args.data}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, {date.today()}\n")
    print("| setting | images/s (median of rounds) | each round | vs before |")
    print("|---|---|---|---|")
    rows = []
    for s in settings:
        med = statistics.median(rates[s.name])
        rows.append({"setting": s.name, "images_per_s": med, "rounds": rates[s.name], "speedup": med / base})
        print(f"| {s.name} | {med:.2f} | {', '.join(f'{v:.1f}' for v in rates[s.name])} | {med / base:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps({"batch": args.batch, "crop": crop, "rows": rows}, indent=2) + "\n")
    return 0


def load_student(path: Path):
    if path.suffix == ".pt":
        from fasterseg.nets.official import load_official_arch, official_genotype

        if not path.is_file():
            sys.exit(f"{path}: not found (the official architectures are in ../shared/reference/official)")
        return official_genotype(load_official_arch(path), role="student")
    from fasterseg.modelfile import load_genotype

    return load_genotype(str(path))


if __name__ == "__main__":
    sys.exit(main())
