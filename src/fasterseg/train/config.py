"""Training settings. Defaults are the paper's recipe (METHOD.md) where it has one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fasterseg.data.splits import as_split_list
from fasterseg.data.mixing import BatchMix
from fasterseg.data.transforms import Photometric
from fasterseg.genotype import INPUT_NORMS, OUTPUT_STRIDES


@dataclass
class DataConfig:
    spec: str = "camvid:../shared/data/camvid"  # dataset spec KIND:PATH (cityscapes, camvid, bdd100k, folder, synth)
    train_split: str | list[str] = "train"  # split trained on, or a list read as one (e.g. [train, val])
    val_split: str = "val"  # split validated on
    crop_size: tuple[int, int] = (512, 1024)  # training crop (height, width); smaller images are padded with ignore
    scales: tuple[float, ...] = (0.75, 1.0, 1.25)  # random rescaling factors before cropping
    base_scale: float = 1.0  # resize every training image by this first (e.g. 0.5)
    flip: bool = True  # random horizontal flip
    val_scale: float = 1.0  # evaluate on images resized by this (labels stay full size)
    workers: int = 2  # data-loading processes per training process
    cache: bool = True  # decode each split once into a memory-mapped uint8 file instead of reading PNGs every step
    cache_dir: str = ""  # where decoded splits are kept; empty: OUT_DIR/.cache/data
    cache_max_gb: float = 8.0  # a split larger than this decoded (4 bytes a pixel) is read from its files instead
    photometric: Photometric = field(default_factory=Photometric)  # colour/blur/noise jitter of training crops
    resize_schedule: tuple[tuple[int, float], ...] = ()  # progressive resizing: [[epoch, factor], ...], images and crops resized by factor from each epoch on
    mix: str = "none"  # none | cutmix (a rectangle of the next crop) | classmix (half of its classes' pixels) pasted into a crop
    mix_prob: float = 0.5  # chance that a crop receives a paste (with mix)


CLASS_WEIGHTINGS = ("none", "median_frequency", "inverse_log")
OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd (the paper) | adam (L2 in the gradient, as from-scratch CamVid recipes) | adamw (decoupled decay)
    lr: float = 0.01  # initial learning rate (after warm-up)
    momentum: float = 0.9  # SGD momentum; Adam's beta1
    weight_decay: float = 5e-4  # weight decay
    schedule: str = "exponential"  # "exponential": lr * gamma^epoch; "poly": lr * (1 - it/total)^power
    warmup_epochs: float = 0.0  # linear warm-up from lr/100 over this many epochs (counted in iterations), then the schedule
    gamma: float = 0.992  # per-epoch decay of the exponential schedule
    power: float = 0.9  # exponent of the poly schedule
    grad_clip: float = 0.0  # 0: no clipping


@dataclass
class LossConfig:
    ohem_thresh: float = 0.7  # OHEM keeps pixels whose true-class probability is at most this
    ohem_min_kept_ratio: float = 1 / 16  # ...and at least this fraction of the batch's pixels
    aux_weight: float = 0.2  # weight of each auxiliary head (1/16, 1/32) loss; 0: no auxiliary heads (on a CPU their full-resolution losses are a third of a step)
    distill_weight: float = 1.0  # weight of the KL distillation loss (with a teacher)
    class_weight: str = "none"  # none | median_frequency (SegNet) | inverse_log (ENet), from the training labels
    inverse_log_offset: float = 1.02  # c in inverse_log's 1 / ln(c + p): ENet's 1.02; from-scratch CamVid recipes use 1.10


@dataclass
class TrainConfig:
    RENAMED_KEYS: ClassVar[dict[str, str]] = {"val_batches": "val_images"}  # it always counted images

    genotype: str = ""  # path of the genotype JSON (or a model file to take the genotype from); empty with init: init's
    network: str = ""  # a registered network instead of a genotype (fasterseg info --networks), e.g. ddrnet23_slim
    input_norm: str = ""  # empty: the genotype's; dataset (the paper) | image (each image standardised per channel)
    output_stride: int = 0  # 0: the genotype's; 8 (the paper) | 4 (the 1/8 scores refined at 1/4 with the stem's features)
    teacher: str | None = None  # model file of a trained teacher: enables distillation
    init: str = ""  # model file to start from (fine-tuning); classifier rows are matched by class name
    freeze: list[str] | str = ""  # parameter prefixes left untrained, e.g. stem or [stem, cells.0-0]
    name: str = "train"  # run directory name under out_dir
    out_dir: str = "runs"  # where run directories are created
    seed: int = 0  # seeds weights, data order and augmentation
    epochs: int = 600  # training epochs
    iters_per_epoch: int = 1000  # 0: one pass over the training split
    batch_size: int = 12  # per process
    val_every: int = 10  # epochs; 0: only at the end
    val_images: int = 0  # score only the first N images of the val split (0: all of it)
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (autocast); auto: bf16 where the CPU has bf16 units, else fp32
    channels_last: bool = True  # NHWC memory format (faster with oneDNN on CPU and with cuDNN)
    keep_freed_memory: bool = True  # glibc: large tensors reuse freed heap memory instead of fresh pages (CPU steps ~1.2x faster)
    sync_bn: bool = True  # under torchrun on CUDA
    freeze_bn: bool = False  # keep BatchNorm statistics fixed (fine-tuning; exact multi-process CPU checks)
    deterministic: bool = False  # deterministic algorithms where the backend allows (slower on CUDA)
    log_every: int = 20  # iterations between CSV/TensorBoard log rows
    compact_every: int = 0  # epochs between compact checkpoints (RUN/compact.safetensors, to carry a run to another machine); 0: none
    ema_decay: float = 0.0  # 0: off; e.g. 0.999: also keep the weights' moving average (1/(1-d) steps), scored and saved (ema.safetensors)
    compact_max_mb: float = 10.0  # the compact checkpoint's size limit per file: it rounds optimiser moments, then weights, then splits into parts, to fit
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.network:
            from fasterseg.nets.registry import entry

            self.network = entry(self.network).name  # an unknown name fails here, naming the registered ones
            if self.genotype:
                raise ValueError(f"network={self.network} and genotype={self.genotype}: give one of them")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.loss.class_weight not in CLASS_WEIGHTINGS:
            raise ValueError(f"loss.class_weight must be one of {list(CLASS_WEIGHTINGS)}, got {self.loss.class_weight!r}")
        splits = as_split_list(self.data.train_split)
        if not splits or not all(splits):
            raise ValueError(f"data.train_split must name at least one split, got {self.data.train_split!r}")
        if self.input_norm not in ("", *INPUT_NORMS):
            raise ValueError(f"input_norm must be empty (the genotype's) or one of {list(INPUT_NORMS)}, got {self.input_norm!r}")
        if self.input_norm and self.network:
            raise ValueError(f"input_norm applies to FasterSeg genotypes; the registered network {self.network!r} has its own input")
        if self.output_stride not in (0, *OUTPUT_STRIDES):
            raise ValueError(f"output_stride must be 0 (the genotype's) or one of {list(OUTPUT_STRIDES)}, got {self.output_stride!r}")
        if self.output_stride and self.network:
            raise ValueError(f"output_stride applies to FasterSeg genotypes; the registered network {self.network!r} has its own head")
        if self.optim.name not in OPTIMIZERS:
            raise ValueError(f"optim.name must be one of {list(OPTIMIZERS)}, got {self.optim.name!r}")
        if self.optim.warmup_epochs < 0:
            raise ValueError(f"optim.warmup_epochs must be >= 0, got {self.optim.warmup_epochs}")
        if not self.loss.inverse_log_offset > 1:
            raise ValueError(f"loss.inverse_log_offset must be > 1 (the weight is 1 / ln(offset + p)), got {self.loss.inverse_log_offset}")
        if self.optim.schedule not in ("exponential", "poly"):
            raise ValueError(f"optim.schedule must be exponential or poly, got {self.optim.schedule!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.loss.aux_weight < 0:
            raise ValueError(f"loss.aux_weight must be >= 0, got {self.loss.aux_weight}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be 0 (off) or in (0, 1), got {self.ema_decay}")
        if self.compact_every < 0 or not self.compact_max_mb > 0:
            raise ValueError(f"compact_every must be >= 0 and compact_max_mb > 0, got {self.compact_every}, {self.compact_max_mb}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not self.optim.lr > 0 or self.optim.weight_decay < 0 or not 0 <= self.optim.momentum < 1:
            raise ValueError(f"optim.lr must be > 0, optim.weight_decay >= 0 and optim.momentum in [0, 1); got "
                             f"{self.optim.lr}, {self.optim.weight_decay}, {self.optim.momentum}")
        epochs = [e for e, _ in self.data.resize_schedule]
        if any(e < 0 for e in epochs) or epochs != sorted(set(epochs)) or any(not f > 0 for _, f in self.data.resize_schedule):
            raise ValueError(f"data.resize_schedule must list [epoch, factor] pairs with epochs >= 0 increasing and factors > 0, "
                             f"got {[list(x) for x in self.data.resize_schedule]}")
        BatchMix(self.data.mix, self.data.mix_prob)  # names a bad mode or probability
        if min(self.data.crop_size) < 1:
            raise ValueError(f"data.crop_size must be positive, got {list(self.data.crop_size)}")
        if not self.data.scales or min(self.data.scales) <= 0 or self.data.base_scale <= 0 or self.data.val_scale <= 0:
            raise ValueError("data.scales, data.base_scale and data.val_scale must be > 0")


def resize_factor(schedule: tuple[tuple[int, float], ...], epoch: int) -> float:
    """The training images' and crops' resize factor in ``epoch`` under ``data.resize_schedule``."""
    factor = 1.0
    for start, value in schedule:
        if epoch >= start:
            factor = float(value)
    return factor
