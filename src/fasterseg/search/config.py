"""The search's settings: one phase's schedule, what the loop runs, and the whole job."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fasterseg.data.splits import as_split_list
from fasterseg.errors import ConfigError
from fasterseg.space.config import SupernetConfig


@dataclass
class PhaseConfig:
    """One phase's schedule (the supernet and data are the job's)."""

    epochs: int = 20  # epochs of this phase
    iters_per_epoch: int = 0  # 0: the official max(len(half) // batch_size, 400)
    batch_size: int = 3  # global batch (shared by torchrun processes)
    crop: list[int] = field(default_factory=lambda: [256, 512])  # training crop (height, width) after downsampling
    downsample: int = 2  # images are first shrunk by this factor (the paper searches at half resolution)
    scales: list[float] = field(default_factory=lambda: [0.75, 1.0, 1.25])  # random rescaling factors
    optimizer: str = "sgd"  # sgd (the paper) | adam: the optimiser of the supernet weights
    lr: float = 0.02  # learning rate of the supernet weights
    lr_decay: float = 0.978  # per-epoch exponential decay of lr
    momentum: float = 0.9  # SGD momentum; Adam's beta1
    weight_decay: float = 5e-4  # weight decay (Adam: L2 added to the gradient)
    grad_clip: float = 5.0  # gradient-norm clip of the weight step
    arch_lr: float = 3e-4  # Adam learning rate of the architecture parameters
    ohem_thresh: float = 0.7  # OHEM probability threshold
    latency_weights: dict[str, float] = field(default_factory=lambda: {"student": 0.01})  # initial latency-loss weight per architecture
    fps_min: dict[str, float] = field(default_factory=lambda: {"student": 155.0})  # below this table FPS the weight doubles
    fps_max: dict[str, float] = field(default_factory=lambda: {"student": 175.0})  # above this table FPS the weight halves
    val_limit: int = 0  # score only the first N validation images each epoch (0: all)
    pretrain_every_arch: bool = False  # pretraining also trains every further architecture's stem and heads (one random-width pass each; not the paper's)
    bn_batches: int = 0  # before scoring, re-estimate batch-norm statistics over this many training batches (0: the running ones, as the paper)
    seed: int = 12345  # seeds the halves, the data order and the augmentation
    num_workers: int = 0  # data-loading processes
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 autocast of the supernet passes; auto: bf16 where the device has it
    channels_last: bool = True  # NHWC supernet and batches (oneDNN's native layout: about 10% faster a CPU step)
    checkpoint_minutes: float = 10.0  # also checkpoint inside an epoch after this many minutes since the last (0: epoch ends only); resumes exactly

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"optimizer: must be sgd or adam, got {self.optimizer!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"precision: must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.bn_batches < 0:
            raise ConfigError(f"bn_batches: must be >= 0 (0: score with the running statistics), got {self.bn_batches}")
        if not self.checkpoint_minutes >= 0:
            raise ConfigError(f"checkpoint_minutes: must be >= 0 (0: checkpoint at epoch ends only), got {self.checkpoint_minutes}")
        if self.iters_per_epoch < 0:
            raise ConfigError(f"iters_per_epoch: must be >= 0 (0: automatic), got {self.iters_per_epoch}")
        for key in ("epochs", "batch_size", "downsample"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be >= 1, got {getattr(self, key)}")
        if len(self.crop) != 2 or min(self.crop) < 8 or any(c % 8 for c in self.crop):
            raise ConfigError(f"crop: must be [height, width], positive multiples of 8 (the labels are scored at 1/8), "
                              f"got {list(self.crop)}")


@dataclass
class SearchConfig(PhaseConfig):
    """What the search loop runs: one phase's schedule (defaults: the paper's pretraining) with the
    supernet and data it runs on, which a job shares between its two phases."""

    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    train_data: str = ""  # dataset spec, e.g. camvid:/data/camvid
    val_data: str = ""  # dataset spec whose val_split scores the outputs each epoch; "" = none
    train_split: str | list[str] = "train"  # split(s) searched on (halved into weight and architecture data)
    val_split: str = "val"  # split of val_data scored each epoch
    pretrain: bool = True
    cache_dir: str = ""  # decode the training split once into this folder ("": read the files every step)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_splits(self.train_split, self.val_split)
        names = {a.name for a in self.supernet.archs}
        for key in ("latency_weights", "fps_min", "fps_max"):
            unknown = set(getattr(self, key)) - names
            if unknown:
                raise ConfigError(f"{key}: no architecture named {sorted(unknown)}")


def _pretrain_phase() -> PhaseConfig:
    return PhaseConfig(epochs=20, batch_size=3, crop=[256, 512], lr=0.02)


def _search_phase() -> PhaseConfig:
    return PhaseConfig(epochs=30, batch_size=2, crop=[224, 448], lr=0.01)


@dataclass
class SearchJobConfig:
    """``fasterseg search``: both phases over one supernet and one latency table."""

    name: str = "search"  # run directory name under out_dir
    out_dir: str = "runs"  # where run directories are created
    data: str = ""  # dataset spec KIND:PATH for both phases (train_split searched, val_split scored)
    train_split: str | list[str] = "train"  # split(s) searched on, e.g. seq_train (CamVid's sequence-disjoint split)
    val_split: str = "val"  # split scored each epoch and used to pick an epoch, e.g. seq_val
    lut: str = "official-1080ti-trt5"  # latency table file, or a named profile shipped with fasterseg
    latency_size: tuple[int, int] = (1024, 2048)  # input size at which latency (and FPS) is judged
    latency_terms: str = "decoupled"  # decoupled (the paper's 3 terms) | coupled (one term: the collapse ablation)
    # At 8 layers the derivation fixes the 1/32 path, so down-sampling cannot move a 1/8+1/32 student (docs/benchmarks.md, issue 30).
    latency_split: list[float] = field(default_factory=list)  # decoupled terms' weights (ops, down-sampling, widths); []: the paper's 1/500, 497/500, 2/500
    device: str = "auto"  # auto | cpu | cuda
    keep_freed_memory: bool = True  # glibc: large tensors reuse freed heap memory instead of fresh pages (fasterseg.utils.memory)
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    pretrain: PhaseConfig = field(default_factory=_pretrain_phase)  # weights only, random and sandwich widths
    search: PhaseConfig = field(default_factory=_search_phase)  # alternating weight and architecture steps
    pretrained_from: str = ""  # a search run whose finished pretraining this one starts from (same supernet, data, pretrain); "": pretrain here

    def __post_init__(self) -> None:
        if self.latency_terms not in ("decoupled", "coupled"):
            raise ConfigError(f"latency_terms: must be decoupled or coupled, got {self.latency_terms!r}")
        split = list(self.latency_split)
        if split and (len(split) != 3 or any(not isinstance(v, (int, float)) or v < 0 for v in split) or sum(split) <= 0):
            raise ConfigError(f"latency_split: must be three weights >= 0 (ops, down-sampling, widths) with a positive sum, "
                              f"or [] for the paper's; got {self.latency_split!r}")
        if split and self.latency_terms != "decoupled":
            raise ConfigError("latency_split: weighs the decoupled terms; with latency_terms: coupled leave it []")
        _check_splits(self.train_split, self.val_split)


def _check_splits(train_split: str | list[str], val_split: str) -> None:
    names = as_split_list(train_split)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"train_split: must name at least one split, got {train_split!r}")
    if not isinstance(val_split, str) or not val_split:
        raise ConfigError(f"val_split: must name one split, got {val_split!r}")


def phase_config(job: SearchJobConfig, phase: PhaseConfig, pretrain: bool) -> SearchConfig:
    """The loop's configuration of one phase: the job's supernet and data, the phase's schedule."""
    from fasterseg.config import to_dict

    return SearchConfig(supernet=job.supernet, train_data=job.data, val_data=job.data, pretrain=pretrain,
                        train_split=job.train_split, val_split=job.val_split,
                        cache_dir=str(Path(job.out_dir) / ".cache" / "data"), **to_dict(phase))
