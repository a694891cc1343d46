"""The training loop: read top to bottom — data, model, optimiser, epochs, validation, checkpoints.

Reproducibility: the data order of an epoch and every sample's augmentation are functions of
(seed, epoch, position), never of worker scheduling or process count, and a checkpoint after
each epoch holds model, optimiser, scaler, best score and RNG state, so ``--resume`` continues
exactly and a run on N processes sees the same global batches as a run on one.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from fasterseg.config import save_config, to_dict
from fasterseg.data.base import DatasetInfo
from fasterseg.data.mixing import BatchMix
from fasterseg.data.splits import as_split_list, read_splits
from fasterseg.data.transforms import EvalTransform, TrainTransform
from fasterseg.errors import TrainingError
from fasterseg.evaluate.scorer import score_dataset
from fasterseg.genotype import Genotype
from fasterseg.modelfile import ModelMeta, load_genotype, save_model
from fasterseg.nets.registry import GENOTYPE_NETWORK, build_network
from fasterseg.nets.network import FasterSegNet, init_weights
from fasterseg.train.config import TrainConfig, resize_factor
from fasterseg.distributed import DistInfo, all_reduce_mean, barrier, cleanup, init_distributed
from fasterseg.losses import OhemCrossEntropy, distillation_kl, segmentation_loss
from fasterseg.train.class_weights import class_weights, label_statistics
from fasterseg.train.compact import COMPACT, CONTINUED_FROM, RunRecord, TrainState, read_compact, save_compact
from fasterseg.train.ema import WeightAverage
from fasterseg.train.init_from import freeze, frozen_batchnorms, initialise_from
from fasterseg.utils.device import resolve_device, resolve_precision
from fasterseg.utils.env import environment
from fasterseg.utils.io import append_csv_row, atomic_path, atomic_write_text
from fasterseg.utils.memory import keep_freed_memory
from fasterseg.utils.runlock import run_lock
from fasterseg.utils.metrics import MetricsLog

CHECKPOINT = "checkpoint.safetensors"  # the compact format at full precision: no pickle
LEGACY_CHECKPOINT = "checkpoint.pt"  # what runs started before 2026-12-07 wrote (a torch pickle; not read)
EPOCH_COLUMNS = ("epoch", "loss", "lr", "seconds", "val_mIoU", "val_pixel_accuracy", "val_mIoU_ema")  # epochs.csv


# ----------------------------------------------------------------------------- data order
def epoch_order(num_samples: int, seed: int, epoch: int, total: int) -> list[int]:
    """``total`` sample indices for one epoch: concatenated seeded permutations."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order: list[int] = []
    while len(order) < total:
        order.extend(torch.randperm(num_samples, generator=g).tolist())
    return order[:total]


def seeded_generator(*key: int) -> torch.Generator:
    """A generator seeded by integers (hashes of int tuples are the same in every process and run)."""
    return torch.Generator().manual_seed(hash(key) & 0x7FFF_FFFF_FFFF_FFFF)


class ShardedEpochSampler(Sampler):
    """Yields (position, index) for this process's share of each global batch."""

    def __init__(self, num_samples: int, seed: int, iters: int, batch_size: int, dist_info: DistInfo):
        self.num_samples, self.seed, self.iters, self.batch_size, self.dist = num_samples, seed, iters, batch_size, dist_info
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.iters * self.batch_size

    def __iter__(self):
        global_batch = self.batch_size * self.dist.world_size
        order = epoch_order(self.num_samples, self.seed, self.epoch, self.iters * global_batch)
        for it in range(self.iters):
            start = it * global_batch + self.dist.rank * self.batch_size
            for pos in range(start, start + self.batch_size):
                yield (self.epoch, pos, order[pos])


class AugmentedDataset(Dataset):
    """Applies the training transform with a generator seeded by (seed, epoch, position)."""

    def __init__(self, base, transform: TrainTransform, seed: int):
        self.base, self.transform, self.seed = base, transform, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key):
        epoch, pos, index = key
        g = seeded_generator(self.seed, epoch, pos)
        image, label = self.base[index]
        return self.transform(image, label, g)


# ----------------------------------------------------------------------------- helpers
def learning_rate(cfg: TrainConfig, epoch: int, it: int, iters: int) -> float:
    """The rate of iteration ``it`` of ``epoch``: a linear warm-up from lr/100 over
    ``warmup_epochs`` (counted in iterations), then the schedule over the whole run."""
    o = cfg.optim
    step = epoch * iters + it
    warmup = round(o.warmup_epochs * iters)
    if step < warmup:
        return o.lr * (0.01 + 0.99 * step / warmup)
    if o.schedule == "poly":
        progress = step / max(1, cfg.epochs * iters)
        return o.lr * (1 - progress) ** o.power
    return o.lr * o.gamma ** epoch


def make_optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD with momentum (the paper), Adam with L2 in the gradient (the from-scratch CamVid
    recipes' ``torch.optim.Adam(weight_decay=...)``) or AdamW; ``momentum`` is Adam's beta1."""
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    kind = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
    return kind(params, lr=o.lr, betas=(o.momentum, 0.999), weight_decay=o.weight_decay)


@torch.no_grad()
def evaluate_model(model: nn.Module, dataset, info: DatasetInfo, device: torch.device, dist_info: DistInfo,
                   max_images: int = 0, transform: EvalTransform | None = None, show_progress: bool = True) -> dict:
    """Whole-image evaluation: mIoU, per-class IoU, pixel and mean accuracy (all processes agree),
    through the scoring loop ``eval`` uses (``evaluate.scorer.score_dataset``); each process scores
    its share of the images."""
    was_training = model.training
    model.eval()
    transform = transform or EvalTransform()

    labels: dict[int, torch.Tensor] = {}

    def predict(i: int) -> torch.Tensor:
        img, labels[i] = transform(*dataset[i])  # each image read once: its label is scored from here
        lab = labels[i]
        logits = model(img[None].to(device))
        if logits.shape[-2:] != lab.shape:  # val_scale: scores back at the labels' size
            logits = nn.functional.interpolate(logits, size=lab.shape, mode="bilinear", align_corners=False)
        return logits.argmax(1)[0]

    count = len(dataset) if not max_images else min(max_images, len(dataset))
    result = score_dataset(predict, dataset, indices=range(dist_info.rank, count, dist_info.world_size),
                           progress=show_progress and dist_info.is_main, all_reduce=True, desc="validate",
                           truth=labels.pop)
    model.train(was_training)
    return {
        "mIoU": result.miou,
        "pixel_accuracy": result.pixel_accuracy,
        "mean_accuracy": result.mean_accuracy,
        "IoU": {name: (None if math.isnan(v) else v) for name, v in result.class_iou.items()},
    }


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path
    best_miou: float | None
    history: list[dict]


# ----------------------------------------------------------------------------- the loop
def train(cfg: TrainConfig, resume: bool = False, show_progress: bool = True) -> TrainResult:
    run_dir = Path(cfg.out_dir) / cfg.name
    if cfg.keep_freed_memory:
        keep_freed_memory()  # process-wide, before the first large tensor (fasterseg.utils.memory)
    device = resolve_device(cfg.device)
    dist_info = init_distributed(device.type)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
    try:
        with run_lock(run_dir, enabled=dist_info.is_main):
            return _train(cfg, run_dir, device, dist_info, resume, show_progress)
    finally:
        cleanup(dist_info)


def _train(cfg: TrainConfig, run_dir: Path, device: torch.device, dist_info: DistInfo, resume: bool,
           show_progress: bool) -> TrainResult:
    """The run as the sequence it is: settle the backend, check the folder, read the data, build
    the model and its optimisation, start or restore, then epochs of training, scoring and saving."""
    _seed_and_settle(cfg, device)
    checkpoint_path = _check_run_folder(run_dir, resume)
    data = _read_data(cfg, device, dist_info, show_progress)
    built = _build_model(cfg, run_dir, resume, data.info, device, dist_info)
    step = _build_step(cfg, built, data, device, dist_info, checkpoint_path, show_progress)
    start_epoch, best_miou, history = 0, None, []
    if resume:
        start_epoch, best_miou, history = _restore(step, run_dir)
    elif dist_info.is_main:
        _start_run_files(cfg, run_dir, built.genotype, _resolved_settings(step, data))
    barrier(dist_info)

    meta = _model_meta(cfg, built, data)
    run_record = RunRecord(to_dict(cfg), built.genotype.to_dict() if built.genotype is not None else None,
                           built.init_record)
    logger = _Logger(run_dir, dist_info.is_main, data.iters, start_epoch)
    val_transform = EvalTransform(scale=cfg.data.val_scale)
    mix = BatchMix(cfg.data.mix, cfg.data.mix_prob, data.info.ignore_index)
    for epoch in range(start_epoch, cfg.epochs):
        _set_train_mode(cfg, built)
        data.start_epoch(epoch, cfg.data.resize_schedule)
        record = _train_one_epoch(step, data.loader, epoch, data.iters, logger, show_progress and dist_info.is_main, mix)
        improved = False
        if data.val_set is not None and _validates(cfg, epoch):
            scores = evaluate_model(built.model, data.val_set, data.info, device, dist_info, cfg.val_images,
                                    val_transform, show_progress)
            record["val_mIoU"], record["val_pixel_accuracy"] = scores["mIoU"], scores["pixel_accuracy"]
            improved = best_miou is None or scores["mIoU"] > best_miou
            best_miou = scores["mIoU"] if improved else best_miou
            if step.ema is not None:
                record["val_mIoU_ema"] = evaluate_model(step.ema.shadow, data.val_set, data.info, device, dist_info,
                                                        cfg.val_images, val_transform, show_progress)["mIoU"]
        history.append(record)
        if dist_info.is_main:
            logger.epoch_row(record)
            state = _train_state(step, epoch, history, best_miou)
            _save_epoch(step, run_dir, meta, record, state, run_record, improved)
            if cfg.compact_every and ((epoch + 1) % cfg.compact_every == 0 or epoch + 1 == cfg.epochs):
                _save_compact(run_dir, state, run_record, cfg.compact_max_mb)
            if show_progress:
                tqdm.write(_epoch_line(cfg, record, improved))
        barrier(dist_info)
    logger.close()
    return _finish(cfg, run_dir, dist_info, best_miou, history)


def _seed_and_settle(cfg: TrainConfig, device: torch.device) -> None:
    """The seed, and deterministic kernels where asked (else cuDNN's autotuner on a GPU)."""
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def _check_run_folder(run_dir: Path, resume: bool) -> Path:
    """The checkpoint path, after refusing a start over a run or a resume with nothing to resume."""
    checkpoint_path = run_dir / CHECKPOINT
    if resume and not checkpoint_path.is_file() and (run_dir / LEGACY_CHECKPOINT).is_file():
        raise TrainingError(f"{run_dir / LEGACY_CHECKPOINT}: a checkpoint in the pickle format of earlier fasterseg "
                            f"versions, which is no longer loaded; convert it once with `python "
                            f"scripts/convert_checkpoint.py {run_dir}` (it reads tensors only), then resume")
    if resume and not checkpoint_path.is_file() and not (run_dir / CONTINUED_FROM).is_file():
        raise TrainingError(f"{run_dir}: nothing to resume (no {CHECKPOINT})")
    if not resume and (checkpoint_path.exists() or (run_dir / LEGACY_CHECKPOINT).exists()):
        raise TrainingError(f"{run_dir} already holds a run; pass --resume to continue it or choose another name")
    return checkpoint_path


@dataclass
class _Data:
    train_base: object  # the decoded training split(s)
    val_set: object | None
    info: DatasetInfo
    splits: list[str]
    sampler: "ShardedEpochSampler"
    loader: DataLoader
    iters: int  # steps an epoch
    transform: TrainTransform  # at full resolution; an epoch may train with a resized copy (resize_schedule)

    def start_epoch(self, epoch: int, schedule: tuple[tuple[int, float], ...]) -> None:
        """The epoch's data order and resolution (a loader's workers receive the dataset anew each epoch)."""
        self.sampler.set_epoch(epoch)
        self.loader.dataset.transform = self.transform.resized(resize_factor(schedule, epoch))


def _read_data(cfg: TrainConfig, device: torch.device, dist_info: DistInfo, show_progress: bool) -> _Data:
    """The training and validation splits (decoded once into the cache) and the seeded loader."""
    d = cfg.data
    splits = as_split_list(d.train_split)
    cache_dir = (d.cache_dir or str(Path(cfg.out_dir) / ".cache" / "data")) if d.cache else None
    show = show_progress and dist_info.is_main
    say = tqdm.write if dist_info.is_main else (lambda _: None)
    train_base = read_splits(d.spec, splits, cache_dir, show, d.cache_max_gb, say)
    val_set = read_splits(d.spec, [d.val_split], cache_dir, show, d.cache_max_gb, say) if cfg.val_every >= 0 else None
    info: DatasetInfo = train_base.info
    transform = TrainTransform(crop_size=tuple(d.crop_size), scales=tuple(d.scales), flip=d.flip,
                               base_scale=d.base_scale, ignore_index=info.ignore_index, photometric=d.photometric)
    iters = cfg.iters_per_epoch or max(1, len(train_base) // (cfg.batch_size * dist_info.world_size))
    sampler = ShardedEpochSampler(len(train_base), cfg.seed, iters, cfg.batch_size, dist_info)
    loader = DataLoader(AugmentedDataset(train_base, transform, cfg.seed), batch_size=cfg.batch_size, sampler=sampler,
                        num_workers=d.workers, pin_memory=device.type == "cuda", drop_last=True,
                        persistent_workers=False)  # workers receive the dataset anew each epoch (resize_schedule)
    return _Data(train_base, val_set, info, splits, sampler, loader, iters, transform)


@dataclass
class _Built:
    genotype: Genotype | None  # None for a registered network (cfg.network)
    model: nn.Module  # the network (what is saved)
    net: nn.Module  # what runs the step: the model, or its DDP wrapper
    frozen_prefixes: list[str]
    frozen_bns: list[nn.Module]
    init_record: dict | None


def _build_model(cfg: TrainConfig, run_dir: Path, resume: bool, info: DatasetInfo, device: torch.device,
                 dist_info: DistInfo) -> _Built:
    """The network (a genotype's, or a registered one), fresh weights (or ``init``'s), frozen
    parts, device, memory layout, DDP."""
    aux_heads = cfg.loss.aux_weight > 0  # 0: no auxiliary heads to compute at all
    if cfg.network:
        genotype = None
        model = build_network(cfg.network, info.num_classes, aux_heads=aux_heads)  # its own initialisation
    else:
        genotype = _genotype_to_train(cfg, run_dir, resume, info)
        model = FasterSegNet(genotype, aux_heads=aux_heads)
        init_weights(model)
    frozen_prefixes = [cfg.freeze] if isinstance(cfg.freeze, str) and cfg.freeze else list(cfg.freeze or [])
    freeze(model, frozen_prefixes)  # first: a wrong prefix fails before anything is written
    frozen_bns = frozen_batchnorms(model, frozen_prefixes)
    init_record = _initialise(cfg, model, info, run_dir, resume, dist_info)
    model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net: nn.Module = model
    if dist_info.enabled:
        if cfg.sync_bn and device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return _Built(genotype, model, net, frozen_prefixes, frozen_bns, init_record)


def _build_step(cfg: TrainConfig, built: _Built, data: _Data, device: torch.device, dist_info: DistInfo,
                checkpoint_path: Path, show_progress: bool) -> "_Step":
    """What one step needs: precision, optimiser, scaler, loss (with class weights), teacher."""
    precision = resolve_precision(cfg.precision, device, note=tqdm.write if dist_info.is_main else (lambda _: None))
    trainable = [p for p in built.model.parameters() if p.requires_grad]
    if not trainable:
        raise TrainingError(f"freeze={built.frozen_prefixes} leaves no parameter to train; freeze fewer modules")
    optimizer = make_optimizer(cfg, trainable)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    weights = None
    if cfg.loss.class_weight != "none":
        info = data.info
        pixels, present_in = label_statistics(data.train_base, info.num_classes, info.ignore_index,
                                              show_progress and dist_info.is_main)
        weights = class_weights(cfg.loss.class_weight, pixels, present_in, cfg.loss.inverse_log_offset).to(device)
    criterion = OhemCrossEntropy(cfg.loss.ohem_thresh, min_kept_ratio=cfg.loss.ohem_min_kept_ratio,
                                 ignore_index=data.info.ignore_index, class_weight=weights)
    teacher = _load_teacher(cfg.teacher, data.info, device) if cfg.teacher else None
    ema = WeightAverage(built.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    return _Step(cfg, built.net, built.model, teacher, criterion, optimizer, scaler, device, precision,
                 cfg.channels_last, dist_info, checkpoint_path, ema)


def _resolved_settings(step: "_Step", data: _Data) -> dict:
    """What ``auto`` settings became on this machine, and the data actually trained on."""
    weights = step.criterion.class_weight
    return {"precision": step.precision, "channels_last": step.channels_last, "device": str(step.device),
            "train_samples": len(data.train_base), "train_splits": data.splits,
            "class_weight": None if weights is None else dict(zip(data.info.class_names, weights.tolist()))}


def _model_meta(cfg: TrainConfig, built: _Built, data: _Data) -> ModelMeta:
    """The header every model file of the run carries."""
    info = data.info
    meta = ModelMeta(genotype=built.genotype, network=cfg.network or GENOTYPE_NETWORK, class_names=info.class_names,
                     train_size=tuple(cfg.data.crop_size),
                     extra={"dataset": info.name, "data": cfg.data.spec, "train_split": data.splits,
                            "palette": [list(c) for c in info.palette]})
    if built.init_record:
        meta.extra["init"] = {k: built.init_record[k] for k in ("init_from", "classes_kept", "classes_new")}
    return meta


def _set_train_mode(cfg: TrainConfig, built: _Built) -> None:
    """Training mode, except batch norms that keep their statistics (``freeze_bn``, frozen layers)."""
    built.net.train()
    if cfg.freeze_bn:
        for m in built.model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    for m in built.frozen_bns:
        m.eval()


def _validates(cfg: TrainConfig, epoch: int) -> bool:
    """Every ``val_every`` epochs, and always after the last."""
    return bool(cfg.val_every and (epoch + 1) % cfg.val_every == 0) or epoch + 1 == cfg.epochs


def _epoch_line(cfg: TrainConfig, record: dict, improved: bool) -> str:
    line = f"epoch {record['epoch']}/{cfg.epochs}: loss {record['loss']:.4f}"
    if "val_mIoU" in record:
        line += f", val mIoU {100 * record['val_mIoU']:.2f}" + (" (best)" if improved else "")
    if "val_mIoU_ema" in record:
        line += f", averaged weights {100 * record['val_mIoU_ema']:.2f}"
    return line


def _finish(cfg: TrainConfig, run_dir: Path, dist_info: DistInfo, best_miou: float | None,
            history: list[dict]) -> TrainResult:
    """``metrics.json`` and the result: the best model when the run was scored, else the last."""
    final = run_dir / ("best.safetensors" if best_miou is not None else "last.safetensors")
    if dist_info.is_main:
        summary = {"best_val_mIoU": best_miou, "epochs": cfg.epochs, "history": history, "model": str(final),
                   "config": to_dict(cfg)}
        atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
    return TrainResult(run_dir=run_dir, model_path=final, best_miou=best_miou, history=history)


@dataclass
class _Step:
    """Everything one SGD step touches, fixed for the whole run."""

    cfg: TrainConfig
    net: nn.Module  # the model, or its DDP wrapper
    model: nn.Module
    teacher: nn.Module | None
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    precision: str
    channels_last: bool
    dist_info: DistInfo
    checkpoint_path: Path
    ema: WeightAverage | None = None  # the weights' moving average (ema_decay), updated after every step

    def __call__(self, img: torch.Tensor, lab: torch.Tensor, lr: float, where: str) -> float:
        """One step at learning rate ``lr``; returns the loss (averaged over processes)."""
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        img = img.to(self.device, non_blocking=True)
        lab = lab.to(self.device, non_blocking=True)
        if self.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        amp = self.precision != "fp32"
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        with torch.autocast(self.device.type, dtype=dtype) if amp else nullcontext():
            outputs = self.net(img)
            loss = segmentation_loss(outputs, lab, self.criterion, cfg.loss.aux_weight)
            if self.teacher is not None:
                with torch.no_grad():
                    target_logits = self.teacher(img)
                loss = loss + cfg.loss.distill_weight * distillation_kl(outputs[0], target_logits)
        loss_value = all_reduce_mean(loss.detach().float(), self.dist_info).item()  # the step's one device sync
        if not math.isfinite(loss_value):
            last = (f"the last good checkpoint is {self.checkpoint_path}" if self.checkpoint_path.exists()
                    else "no checkpoint was written yet")
            raise TrainingError(f"loss became {loss_value} at {where}; stopping ({last}). "
                                "Try a lower optim.lr or precision=fp32.")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss_value


def _genotype_to_train(cfg: TrainConfig, run_dir: Path, resume: bool, info: DatasetInfo) -> Genotype:
    """The genotype, with the dataset's class count. A resumed run reads the one it saved, not the
    path it was started with (which may have been a temporary file, or be gone on another machine)."""
    saved = run_dir / "genotype.json"
    source = str(saved) if resume and saved.is_file() else cfg.genotype or cfg.init
    if not source:
        raise TrainingError("no genotype given (--genotype G.json or genotype=... in the config)")
    genotype = load_genotype(source)
    if genotype.num_classes != info.num_classes:
        genotype = replace(genotype, num_classes=info.num_classes)
    if cfg.input_norm and cfg.input_norm != genotype.input_norm:
        if resume and source == str(saved):
            raise TrainingError(f"{run_dir}: the run was started with input_norm={genotype.input_norm}; its weights "
                                f"cannot continue under input_norm={cfg.input_norm}")
        genotype = replace(genotype, input_norm=cfg.input_norm)
    if cfg.output_stride and cfg.output_stride != genotype.output_stride:
        if resume and source == str(saved):
            raise TrainingError(f"{run_dir}: the run was started with output_stride={genotype.output_stride}; its "
                                f"weights cannot continue under output_stride={cfg.output_stride}")
        genotype = replace(genotype, output_stride=cfg.output_stride)
    return genotype


def _load_teacher(path: str, info: DatasetInfo, device: torch.device) -> nn.Module:
    """The frozen teacher whose softmax the student is distilled towards."""
    from fasterseg.modelfile import load_model

    teacher = load_model(path, device=device)
    if teacher.num_classes != info.num_classes:
        raise TrainingError(f"{path}: teacher predicts {teacher.num_classes} classes, the data has {info.num_classes}")
    return teacher.requires_grad_(False)


def _restore(step: _Step, run_dir: Path) -> tuple[int, float | None, list[dict]]:
    """Load the checkpoint into the step's model, optimiser, scaler and the RNG; on the main
    process save the config as resumed (with its --set changes); the logger drops the log rows of
    the epoch that was interrupted. A folder laid out from a compact checkpoint (``continued_from.json``)
    restores from that file until it has a checkpoint of its own, and rebuilds its
    per-epoch log from the history. Returns (next epoch, best mIoU, history)."""
    path = step.checkpoint_path
    from_compact = not path.is_file()
    if from_compact:
        path = Path(json.loads((run_dir / CONTINUED_FROM).read_text())["compact"])
    try:
        state = read_compact(path)[0]
        step.model.load_state_dict(state.model)
    except (RuntimeError, OSError, KeyError, TypeError, ValueError, TrainingError) as exc:
        raise TrainingError(f"{path}: cannot resume from it ({str(exc).splitlines()[0]}); "
                            "it is not a complete checkpoint of this run") from None
    try:
        step.optimizer.load_state_dict(state.optimizer)
    except ValueError as exc:  # another set of trained parameters: freeze (or optim.name) changed since the run started
        raise TrainingError(f"{path}: its optimiser state does not fit this run ({exc}); settings that change what "
                            "is trained or how (freeze, optim.name) cannot change on --resume") from None
    step.scaler.load_state_dict(state.scaler)
    if step.ema is not None and state.ema is not None:
        step.ema.load_state_dict(state.ema)
    elif step.ema is not None:  # switched on now: the average starts at the weights just restored
        step.ema.load_state_dict(step.model.state_dict())
        if step.dist_info.is_main:
            tqdm.write(f"ema_decay={step.cfg.ema_decay} is new to this run: the average starts at the weights after "
                       f"epoch {state.epoch + 1}")
    torch.set_rng_state(state.rng_cpu.cpu())
    start_epoch = state.epoch + 1
    if step.dist_info.is_main:
        save_config(step.cfg, run_dir / "config.yaml")
        if from_compact:
            with atomic_path(run_dir / "epochs.csv") as tmp:
                tmp.unlink()
                for row in state.history:
                    append_csv_row(tmp, {k: row.get(k, "") for k in EPOCH_COLUMNS})
    return start_epoch, state.best_miou, state.history


def _train_state(step: _Step, epoch: int, history: list[dict], best_miou: float | None) -> TrainState:
    """What a resumed run restores, as it stands after ``epoch``."""
    return TrainState(model=step.model.state_dict(), optimizer=step.optimizer.state_dict(), scaler=step.scaler.state_dict(),
                      epoch=epoch, best_miou=best_miou, history=history, rng_cpu=torch.get_rng_state(),
                      ema=step.ema.state_dict() if step.ema is not None else None)


def _save_compact(run_dir: Path, state: TrainState, run_record: RunRecord, max_mb: float) -> None:
    """RUN/compact.safetensors: the run as one small file (or a header and parts, each at most
    ``max_mb``) another machine continues from."""
    level = save_compact(run_dir / COMPACT, state, run_record, max_mb)
    if level.endswith("!"):
        tqdm.write(f"warning: a tensor of {run_dir / COMPACT} is over compact_max_mb={max_mb} on its own even in fp16, "
                   "so one of its parts is larger than that")


def _start_run_files(cfg: TrainConfig, run_dir: Path, genotype, resolved: dict) -> None:
    """What a new run folder records before its first step: config, genotype, environment, and
    the settings as resolved on this machine. Logs that an earlier attempt under this name left
    before its first checkpoint (it failed in epoch 1) are cleared, not appended to."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("train_log.csv", "epochs.csv"):
        (run_dir / stale).unlink(missing_ok=True)
    if (run_dir / "tensorboard").is_dir():
        shutil.rmtree(run_dir / "tensorboard")
    save_config(cfg, run_dir / "config.yaml")
    if genotype is not None:
        genotype.save(run_dir / "genotype.json")
    atomic_write_text(run_dir / "environment.json", json.dumps(environment(), indent=2) + "\n")
    atomic_write_text(run_dir / "resolved.json", json.dumps(resolved, indent=2) + "\n")


def _save_epoch(step: _Step, run_dir: Path, meta: ModelMeta, record: dict, state: TrainState, run_record: RunRecord,
                improved: bool) -> None:
    """The epoch's model files, then its checkpoint (the compact format at full precision, so a
    resume is exact), each written whole (temporary name, fsync, rename). The checkpoint goes
    last: until it is renamed, a resume redoes this epoch from the previous one and rewrites the
    model files (and the log rows it drops) identically."""
    meta.extra["metrics"] = record
    save_model(run_dir / "last.safetensors", step.model, meta)
    if improved:
        save_model(run_dir / "best.safetensors", step.model, meta)
    if step.ema is not None:  # its header scores the average, not the raw weights
        scores = {k: v for k, v in record.items() if not k.startswith("val_")}
        if "val_mIoU_ema" in record:
            scores["val_mIoU"] = record["val_mIoU_ema"]
        scores["weights"] = f"moving average, decay {step.cfg.ema_decay}"
        save_model(run_dir / "ema.safetensors", step.ema.shadow, replace(meta, extra={**meta.extra, "metrics": scores}))
    save_compact(step.checkpoint_path, state, run_record, max_mb=float("inf"))


def _train_one_epoch(step: _Step, loader, epoch: int, iters: int, logger: "_Logger", show: bool, mix: BatchMix) -> dict:
    """One pass of ``iters`` steps; the epoch's record (mean loss, lr at its start, seconds)."""
    cfg = step.cfg
    bar = tqdm(loader, total=iters, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not show,
               dynamic_ncols=True)
    t0, seen, loss_sum = time.perf_counter(), 0, 0.0
    for it, (img, lab) in enumerate(bar):
        lr = learning_rate(cfg, epoch, it, iters)
        if mix.enabled:  # seeded by (seed, epoch, iteration, rank): a resumed epoch mixes as before
            img, lab = mix(img, lab, seeded_generator(cfg.seed, epoch, it, step.dist_info.rank))
        loss_value = step(img, lab, lr, f"epoch {epoch + 1}, iteration {it + 1}")
        seen += img.shape[0] * step.dist_info.world_size
        loss_sum += loss_value
        rate = seen / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", img_s=f"{rate:.1f}")
        if (it + 1) % cfg.log_every == 0 or it + 1 == iters:
            logger.train_row(epoch + 1, it + 1, loss_value, lr, rate)
    bar.close()
    return {"epoch": epoch + 1, "loss": loss_sum / iters, "lr": learning_rate(cfg, epoch, 0, iters),
            "seconds": time.perf_counter() - t0}


def _initialise(cfg: TrainConfig, model: nn.Module, info: DatasetInfo, run_dir: Path, resume: bool,
                dist_info: DistInfo) -> dict | None:
    """Weights from ``cfg.init`` for a new run (recorded in ``init.json``); a resumed run reads
    that record and takes its weights from the checkpoint."""
    record_path = run_dir / "init.json"
    if resume:
        return json.loads(record_path.read_text()) if record_path.is_file() else None
    if not cfg.init:
        return None
    record = initialise_from(model, cfg.init, info.class_names)
    if dist_info.is_main:
        new = f"; new classes (fresh rows): {', '.join(record['classes_new'])}" if record["classes_new"] else ""
        fresh = (f"; {len(record['tensors_fresh'])} tensors the file lacks start fresh ({_summarise_names(record['tensors_fresh'])})"
                 if record["tensors_fresh"] else "")
        tqdm.write(f"initialised from {cfg.init}: {record['tensors_copied']} tensors copied, "
                   f"{len(record['classes_kept'])} classes kept by name{new}{fresh}")
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
    return record


def _summarise_names(names: list[str]) -> str:
    """``['heads16.a.w', 'heads16.b.w', 'heads32.a.w']`` -> ``heads16 (2), heads32 (1)``."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name.split(".")[0]] = counts.get(name.split(".")[0], 0) + 1
    return ", ".join(f"{k} ({v})" for k, v in counts.items())


class _Logger:
    """The per-step (``train_log.csv``) and per-epoch (``epochs.csv``) rows, through the metrics
    log every run writes with (CSV on the main process; TensorBoard when installed)."""

    def __init__(self, run_dir: Path, enabled: bool, iters_per_epoch: int, start_epoch: int = 0):
        self.iters = iters_per_epoch
        # a resumed run drops what an interrupted epoch logged: every step after the last finished epoch's end
        self.metrics = MetricsLog(run_dir, enabled, purge_step=start_epoch * iters_per_epoch + 1 if start_epoch else None)
        if start_epoch:
            for log in ("train_log.csv", "epochs.csv"):  # epochs count from 1 in the logs
                self.metrics.keep(log, lambda row: int(row["epoch"]) <= start_epoch)

    def train_row(self, epoch: int, it: int, loss: float, lr: float, rate: float) -> None:
        """``epoch`` and ``it`` count from 1; TensorBoard's step is the global iteration."""
        self.metrics.row("train_log.csv", {"epoch": epoch, "iter": it, "loss": loss, "lr": lr, "images_per_s": rate},
                         (epoch - 1) * self.iters + it, tag=lambda k: f"train/{k}", not_scalars=("epoch", "iter"))

    def epoch_row(self, record: dict) -> None:
        row = {k: record.get(k, "") for k in EPOCH_COLUMNS}
        self.metrics.row("epochs.csv", row, record["epoch"] * self.iters, tag=lambda k: f"epoch/{k}")

    def close(self) -> None:
        self.metrics.close()
