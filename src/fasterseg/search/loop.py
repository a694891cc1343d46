"""The search loop: epochs of alternating steps, with the state of each epoch written out.

One call runs one phase (pretraining or search) as the official ``train_search.py`` does;
the search phase usually starts from the pretraining run's weights. Each epoch leaves in the
run directory: ``weights.safetensors`` (the supernet), ``arch.json`` (every architecture's
alphas, betas and width logits, official layout) and a row of ``log.csv``. With a validation
split the five outputs are scored each epoch; with a genotype latency function the search
phase also derives every architecture (``<arch>.json`` and its diagram ``<arch>.png``) and
adapts the latency weights to the FPS windows.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

import yaml

from fasterseg.config import save_config, to_dict
from fasterseg.errors import ConfigError
from fasterseg.nets.summary import plot_architecture
from fasterseg.search.checkpoint import PartialEpoch, has_checkpoint, load_checkpoint, save_checkpoint
from fasterseg.data.registry import build_dataset
from fasterseg.data.splits import as_split_list, read_splits
from fasterseg.search.data import Augmented, SearchTransform, half_loader, split_halves
from fasterseg.distributed import globalise_batchnorm, rank, world_size
from fasterseg.data.transforms import EvalTransform
from fasterseg.search.config import SearchConfig
from fasterseg.search.epoch import (GenotypeLatencyFn, adapt_latency_weight, derive_arch, evaluate_outputs,
                                   recalibrate_batchnorm, save_derived)
from fasterseg.search.history import plot_evolution, read_history, record_epoch
from fasterseg.losses import OhemCrossEntropy
from fasterseg.search.steps import LatencyFn, make_optimisers, search_step
from fasterseg.space.supernet import OUTPUT_NAMES, Supernet
from fasterseg.utils.device import resolve_precision
from fasterseg.utils.io import atomic_path, atomic_write_text
from fasterseg.utils.metrics import MetricsLog


@dataclass
class EpochRecord:
    epoch: int
    lr: float
    weight_loss: float
    arch_loss: float | None
    latency: dict[str, float]
    miou: dict[str, list[float]] = field(default_factory=dict)  # arch -> the five outputs' mIoU
    fps: dict[str, dict[str, float]] = field(default_factory=dict)  # arch -> pairing -> table FPS
    latency_weights: dict[str, float] = field(default_factory=dict)  # for the next epoch


def iterations_per_epoch(cfg: SearchConfig, half_size: int) -> int:
    """``cfg.iters_per_epoch``, or the official rule: one pass over a half, at least 400 steps."""
    return cfg.iters_per_epoch or max(half_size // cfg.batch_size, 400)


def arch_state(net: Supernet) -> dict[str, dict[str, list]]:
    """Every architecture's parameters as nested lists (JSON-ready)."""
    return {name: {k: v.detach().cpu().tolist() for k, v in params.named_parameters()} for name, params in net.arch.items()}


def epoch_row(record: EpochRecord, archs: list[str]) -> dict[str, object]:
    """One epoch as ``column -> value`` (the CSV row; "" where a value does not apply)."""
    row: dict[str, object] = {"epoch": record.epoch, "lr": record.lr, "weight_loss": record.weight_loss,
                              "arch_loss": "" if record.arch_loss is None else record.arch_loss}
    row.update({f"latency_{a}": record.latency.get(a, "") for a in archs})
    row.update({f"miou_{a}_{o}": record.miou[a][i] if a in record.miou else ""
                for a in archs for i, o in enumerate(OUTPUT_NAMES)})
    row.update({f"fps_{a}_{p}": record.fps.get(a, {}).get(p, "") for a in archs for p in ("8_32", "16_32")})
    row.update({f"latency_weight_{a}": record.latency_weights.get(a, "") for a in archs})
    return row


def tensorboard_tag(column: str) -> str:
    """A ``log.csv`` column as a TensorBoard tag, grouped by quantity: ``miou_student_8_32`` ->
    ``miou/student_8_32``, ``latency_weight_student`` -> ``latency_weight/student``."""
    for prefix in ("latency_weight", "latency", "miou", "fps"):
        if column.startswith(prefix + "_"):
            return f"{prefix}/{column[len(prefix) + 1:]}"
    if column.endswith("_loss"):
        return f"loss/{column[:-len('_loss')]}"
    return column


def save_epoch(net: Supernet, run_dir: Path, record: EpochRecord, metrics: MetricsLog) -> None:
    """Weights, architecture parameters, then the epoch's row of ``log.csv`` (and TensorBoard)."""
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(run_dir / "weights.safetensors") as tmp:
        save_file(state, str(tmp))
    atomic_write_text(run_dir / "arch.json", json.dumps(arch_state(net)) + "\n")
    metrics.row("log.csv", epoch_row(record, [a.name for a in net.cfg.archs]), record.epoch, tag=tensorboard_tag)


def run_phase(cfg: SearchConfig, run_dir: str | Path, latency_fn: LatencyFn | None = None,
              init_weights: str | Path | None = None, device: str | torch.device = "cpu",
              genotype_latency: GenotypeLatencyFn | None = None, resume: bool = False) -> list[EpochRecord]:
    """Run one phase of ``cfg`` into ``run_dir``; ``init_weights`` starts from a saved supernet.

    ``latency_fn`` is the differentiable supernet latency of the architecture step;
    ``genotype_latency`` the latency (ms) of a derived network, for the end-of-epoch choice of
    branch pairing and the FPS window. Both usually come from the same lookup table.
    ``resume`` continues the interrupted run in ``run_dir`` from its last finished epoch, with
    the same configuration, exactly as if it had not stopped.

    Started under ``torchrun`` (process group initialised by the caller), every process takes
    its share of each global batch of ``cfg.batch_size`` and the run computes what one process
    computes; only the first process writes files.

    The phase as the sequence it is: check the folder, read the data, build the supernet and its
    optimisers (or restore them), then epochs of steps, scoring, deriving and saving.
    """
    run_dir = Path(run_dir)
    world, me = world_size(), rank()
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size: {cfg.batch_size} cannot be shared equally by {world} processes")
    rewrite_config = _check_resumable(cfg, run_dir) if resume else False
    torch.manual_seed(cfg.seed)
    say = tqdm.write if me == 0 else (lambda _: None)
    data = _read_phase_data(cfg, me, world, say)
    if (rewrite_config or not resume) and me == 0:  # the data is readable: only now is the run folder written
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    device = torch.device(device)
    phase = _build_phase(cfg, data, device, init_weights, say)
    latency_weights = dict(cfg.latency_weights)
    first_epoch = 0
    if resume:
        resumed = load_checkpoint(run_dir, phase.net, phase.opt.weights, phase.opt.archs, phase.schedule)
        first_epoch, latency_weights = resumed.next_epoch, resumed.latency_weights
    metrics = MetricsLog(run_dir, enabled=me == 0, purge_step=first_epoch or None)
    if resume:  # drop rows of epochs the resumed run will redo (written after the last checkpoint)
        metrics.keep("log.csv", lambda row: int(row["epoch"]) < first_epoch)
    partial = resumed.partial if resume else None
    records = []
    for epoch in range(first_epoch, cfg.epochs):
        record = _train_epoch(cfg, phase, data, epoch, latency_fn, latency_weights, me, world, run_dir,
                              partial if partial is not None and partial.epoch == epoch else None)
        if data.val is not None:
            _score_outputs(cfg, phase, data, record, me, world)
        if not cfg.pretrain and genotype_latency is not None and record.miou:
            _derive_and_adapt(cfg, phase.net, record, genotype_latency, latency_weights, run_dir, me)
        record.latency_weights = dict(latency_weights)
        if me == 0:
            save_epoch(phase.net, run_dir, record, metrics)
            save_checkpoint(run_dir, epoch, phase.net, phase.opt.weights, phase.opt.archs, phase.schedule,
                            latency_weights)
        records.append(record)
    metrics.close()
    return records


@dataclass
class _PhaseData:
    dataset: Augmented  # the training split(s), augmented per (seed, epoch, image)
    val: torch.utils.data.Dataset | None  # this process's share of the scored images
    weight_half: list[int]  # images the weight steps train on
    arch_half: list[int]  # images the architecture steps train on
    iters: int  # steps an epoch


def _read_phase_data(cfg: SearchConfig, me: int, world: int, say) -> _PhaseData:
    """The training split (decoded once into the cache) split in two halves, and the val share."""
    transform = SearchTransform(cfg.crop, cfg.scales, cfg.downsample)
    base = read_splits(cfg.train_data, as_split_list(cfg.train_split), cfg.cache_dir or None,
                       show_progress=me == 0, max_cache_gb=8.0, note=say)
    dataset = Augmented(base, transform, cfg.seed)
    info = getattr(base, "info", None)
    if info is not None and info.num_classes != cfg.supernet.num_classes:
        raise ConfigError(
            f"supernet.num_classes: {cfg.supernet.num_classes}, but {cfg.train_data} has {info.num_classes} classes"
        )
    val = None
    if cfg.val_data:
        val = build_dataset(cfg.val_data, cfg.val_split, EvalTransform(downsample=cfg.downsample))
        count = min(cfg.val_limit, len(val)) if cfg.val_limit else len(val)
        val = torch.utils.data.Subset(val, range(me, count, world))  # each process scores its share
    weight_half, arch_half = split_halves(len(dataset), cfg.seed)
    return _PhaseData(dataset, val, weight_half, arch_half, iterations_per_epoch(cfg, len(weight_half)))


@dataclass
class _Phase:
    net: Supernet
    opt: object  # the weight and architecture optimisers (steps.make_optimisers)
    schedule: torch.optim.lr_scheduler.LRScheduler  # the weights' per-epoch decay
    criterion: OhemCrossEntropy
    device: torch.device
    amp_dtype: torch.dtype | None


def _build_phase(cfg: SearchConfig, data: _PhaseData, device: torch.device, init_weights: str | Path | None,
                 say) -> _Phase:
    """The supernet (fresh, or ``init_weights``), its optimisers, schedule, loss and precision."""
    net = globalise_batchnorm(Supernet(cfg.supernet)).to(device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if init_weights is not None:
        net.load_state_dict(load_file(str(init_weights)))
    opt = make_optimisers(net, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.arch_lr, optimizer=cfg.optimizer)
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt.weights, cfg.lr_decay)
    criterion = OhemCrossEntropy(cfg.ohem_thresh, across_processes=True)
    precision = resolve_precision(cfg.precision, device, note=say)
    amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return _Phase(net, opt, schedule, criterion, device, amp_dtype)


def _train_epoch(cfg: SearchConfig, phase: _Phase, data: _PhaseData, epoch: int, latency_fn: LatencyFn | None,
                 latency_weights: dict[str, float], me: int, world: int, run_dir: Path,
                 partial: PartialEpoch | None = None) -> EpochRecord:
    """One epoch of steps: weights on one half, then (searching) architectures on the other.

    ``partial`` continues an epoch stopped after its first steps (their batches are skipped, not
    loaded). Every ``cfg.checkpoint_minutes`` the state after the current step is checkpointed, so
    that a run stopped inside a long epoch loses minutes, not the epoch."""
    seed = cfg.seed + 1000 * epoch
    done = partial.steps if partial is not None else 0
    data.dataset.set_epoch(epoch)
    weights = half_loader(data.dataset, data.weight_half, cfg.batch_size, data.iters, seed, cfg.num_workers, me, world,
                          skip=done)
    archs = half_loader(data.dataset, data.arch_half, cfg.batch_size, data.iters, seed + 1, cfg.num_workers, me, world,
                        skip=done)
    lr = phase.opt.weights.param_groups[0]["lr"]
    sums = {"weight": partial.weight_loss_sum, "arch": partial.arch_loss_sum} if partial else {"weight": 0.0, "arch": 0.0}
    latency: dict[str, float] = dict(partial.latency) if partial else {}
    resumed_rng = torch.get_rng_state() if partial else None  # the stopped run's stream after its last step
    weights, archs = iter(weights), iter(archs)  # creating a loader's iterator draws from the global stream
    if resumed_rng is not None:  # which the stopped run did before that step, not after: go back to where it stood
        torch.set_rng_state(resumed_rng)
    bar = tqdm(zip(weights, archs), total=data.iters, initial=done, file=sys.stderr, disable=me != 0,
               desc=f"{'pretrain' if cfg.pretrain else 'search'} {epoch + 1}/{cfg.epochs}")
    last_saved = time.monotonic()
    for w_batch, a_batch in bar:
        w_batch = _to_device(w_batch, phase.device, cfg.channels_last)
        a_batch = None if cfg.pretrain else _to_device(a_batch, phase.device, cfg.channels_last)
        result = search_step(phase.net, phase.opt, phase.criterion, w_batch, a_batch, cfg.pretrain, cfg.grad_clip,
                             latency_fn, latency_weights, phase.amp_dtype, every_arch=cfg.pretrain_every_arch)
        sums["weight"] += result.weight_loss
        sums["arch"] += result.arch_loss or 0.0
        latency = result.latency
        done += 1
        bar.set_postfix(loss=f"{result.weight_loss:.3f}")
        due = cfg.checkpoint_minutes and time.monotonic() - last_saved >= 60 * cfg.checkpoint_minutes
        if due and done < data.iters:  # the epoch's end writes its own checkpoint
            if me == 0:
                save_checkpoint(run_dir, epoch - 1, phase.net, phase.opt.weights, phase.opt.archs, phase.schedule,
                                latency_weights, PartialEpoch(epoch, done, sums["weight"], sums["arch"], dict(latency)))
            last_saved = time.monotonic()
    phase.schedule.step()
    n = data.iters
    return EpochRecord(epoch, lr, sums["weight"] / n, None if cfg.pretrain else sums["arch"] / n, latency)


def _score_outputs(cfg: SearchConfig, phase: _Phase, data: _PhaseData, record: EpochRecord, me: int,
                   world: int) -> None:
    """Each architecture's five outputs scored on the val split, into ``record.miou``.

    Widths are drawn per image from (seed, epoch, image): the scores do not depend on how images
    are shared, and the training stream is left in step on every process."""
    epoch = record.epoch
    eval_seed = cfg.seed * 1_000_003 + epoch
    calibration = []
    if cfg.bn_batches:  # the same training crops for every architecture scored
        seed = cfg.seed + 1000 * epoch
        calibration = [_to_device(b, phase.device, cfg.channels_last) for b in half_loader(
            data.dataset, data.weight_half, cfg.batch_size, cfg.bn_batches, seed + 2, cfg.num_workers, me, world)]
    # only the first architecture's stem and heads train during pretraining
    scored = cfg.supernet.archs[:1] if cfg.pretrain else cfg.supernet.archs
    widths = "max" if cfg.pretrain else "arch"
    for spec in scored:
        if calibration:
            recalibrate_batchnorm(phase.net, spec.name, calibration, widths, seed=eval_seed)
        record.miou[spec.name] = evaluate_outputs(phase.net, spec.name, data.val, widths, phase.device, seed=eval_seed)


def _derive_and_adapt(cfg: SearchConfig, net: Supernet, record: EpochRecord, genotype_latency: GenotypeLatencyFn,
                      latency_weights: dict[str, float], run_dir: Path, me: int) -> None:
    """Derive every architecture (its genotype, diagram and history row), then move each latency
    weight towards its FPS window (in place, for the next epoch)."""
    for name, miou in record.miou.items():
        derived = derive_arch(net, name, miou, genotype_latency)
        if me == 0:
            save_derived(derived, run_dir / f"{name}.json")
            plot_architecture(derived.genotype, run_dir / f"{name}.png")
            window = (cfg.fps_min[name], cfg.fps_max[name]) if name in cfg.fps_min and name in cfg.fps_max else None
            record_epoch(run_dir, record.epoch, name, derived.genotype, derived.miou, derived.latency_ms,
                         latency_weights.get(name), window)
            plot_evolution(read_history(run_dir)[name], run_dir / f"evolution_{name}.png")
        record.fps[name] = derived.fps
        if latency_weights.get(name, 0) > 0 and name in cfg.fps_min and name in cfg.fps_max:
            before = latency_weights[name]
            latency_weights[name] = adapt_latency_weight(
                before, list(derived.fps.values()), cfg.fps_min[name], cfg.fps_max[name]
            )
            if me == 0 and latency_weights[name] < cfg.latency_weights[name] / 1000 <= before:
                tqdm.write(_window_below_note(name, latency_weights[name], derived.fps, cfg.fps_max[name]),
                           file=sys.stderr)


def _to_device(batch, device: torch.device, channels_last: bool) -> list[torch.Tensor]:
    """(images, labels) on ``device``, the images NHWC when ``channels_last``."""
    images, labels = (t.to(device) for t in batch)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return [images, labels]


def _window_below_note(name: str, weight: float, fps: dict[str, float], fps_max: float) -> str:
    """Said once, when halving has made the latency term negligible: the latency loss can only make
    networks faster, so a window below what accuracy alone picks stops steering the search."""
    now = ", ".join(f"{f:.0f}" for f in fps.values())
    return (f"note: the {name}'s latency weight fell to {weight:.2g} (candidates now {now} FPS, fps_max {fps_max:g}), "
            f"so the search now follows accuracy alone. The latency loss can only make a network faster: "
            f"to steer the search, set a window above the FPS that accuracy alone picks")


# What a resumed phase may change: more (or fewer) epochs continue the same schedule, since the
# learning rate decays per epoch whatever the total; the others only change how epochs are scored.
RESUMABLE_CHANGES = ("epochs", "val_limit", "bn_batches", "num_workers", "checkpoint_minutes")


def changed_settings(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ. Settings added to fasterseg after a run was started are
    not in its saved config (``old``): they cannot differ."""
    changed = []
    for key, value in old.items():
        if isinstance(value, dict) and isinstance(new.get(key), dict):
            changed += changed_settings(value, new[key], f"{prefix}{key}.")
        elif new.get(key) != value:
            changed.append(prefix + key)
    return sorted(changed)


def _check_resumable(cfg: SearchConfig, run_dir: Path) -> bool:
    """Refuse a resume that would change what the phase computes; True when the saved config
    must be rewritten (a longer schedule or other scoring settings)."""
    saved = run_dir / "config.yaml"
    if not saved.is_file() or not has_checkpoint(run_dir):
        raise ConfigError(f"{run_dir}: nothing to resume (needs config.yaml and a checkpoint of a finished epoch)")
    changed = changed_settings(yaml.safe_load(saved.read_text()), to_dict(cfg))
    fixed = [k for k in changed if k not in RESUMABLE_CHANGES]
    if fixed:
        raise ConfigError(f"{saved}: the run was started with other settings for {fixed}; resume with the same config "
                          f"(only {', '.join(RESUMABLE_CHANGES)} may change)")
    return bool(changed)



