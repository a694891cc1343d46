"""Training settings. Defaults are the paper's recipe (METHOD.md) where it has one."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    spec: str = "camvid:../shared/data/camvid"
    train_split: str = "train"
    val_split: str = "val"
    crop_size: tuple[int, int] = (512, 1024)
    scales: tuple[float, ...] = (0.75, 1.0, 1.25)
    base_scale: float = 1.0  # resize every training image by this first (e.g. 0.5)
    flip: bool = True
    val_scale: float = 1.0  # evaluate on images resized by this (labels stay full size)
    workers: int = 2


@dataclass
class OptimConfig:
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "exponential"  # "exponential": lr * gamma^epoch; "poly": lr * (1 - it/total)^power
    gamma: float = 0.992
    power: float = 0.9
    grad_clip: float = 0.0  # 0: no clipping


@dataclass
class LossConfig:
    ohem_thresh: float = 0.7
    ohem_min_kept_ratio: float = 1 / 16
    aux_weight: float = 0.2
    distill_weight: float = 1.0


@dataclass
class TrainConfig:
    genotype: str = ""  # path of the genotype JSON (or a model file to take the genotype from)
    teacher: str | None = None  # model file of a trained teacher: enables distillation
    name: str = "train"
    out_dir: str = "runs"
    seed: int = 0
    epochs: int = 600
    iters_per_epoch: int = 1000  # 0: one pass over the training split
    batch_size: int = 12  # per process
    val_every: int = 10  # epochs; 0: only at the end
    val_batches: int = 0  # 0: the whole val split
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast on CUDA)
    channels_last: bool = False
    sync_bn: bool = True  # under torchrun on CUDA
    freeze_bn: bool = False  # keep BatchNorm statistics fixed (fine-tuning; exact multi-process CPU checks)
    deterministic: bool = False
    log_every: int = 20  # iterations between CSV/TensorBoard log rows
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if self.optim.schedule not in ("exponential", "poly"):
            raise ValueError(f"optim.schedule must be exponential or poly, got {self.optim.schedule!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
