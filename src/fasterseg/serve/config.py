"""The server's settings (``fasterseg config serve`` prints them; ``--set key=value`` overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fasterseg.backends import LABEL_PATHS
from fasterseg.errors import ConfigError


@dataclass
class ServeConfig:
    """``fasterseg serve``: which model, on which deploy path, and the limits that protect it."""

    model: str = "camvid"  # model file, or a built-in name (camvid)
    host: str = "127.0.0.1"  # address to listen on (0.0.0.0 exposes it to the network)
    port: int = 8000  # TCP port
    backend: str = "auto"  # auto: the fastest deploy path here (OpenVINO bf16 on CPUs with bf16, CUDA when present); or a bench backend
    precision: str = "auto"  # auto: the precision that goes with the automatic backend; or fp32 / fp16 / bf16
    device: str = "auto"  # auto | cpu | cuda
    label_path: str = "auto"  # auto | exact | half | quarter: where the argmax is taken (auto: quarter from 360 rows, half under)
    threads: int = 0  # inference threads (0: the deploy path's default)
    max_batch: int = 8  # requests of one image size run together, up to this many
    max_wait_ms: float = 0.0  # how long the first request of a batch waits for company (0: none; requests arriving while a batch runs form the next one)
    max_queue: int = 64  # requests waiting beyond this are answered 503 with Retry-After
    max_body_mb: float = 20.0  # larger request bodies are answered 413
    max_pixels: int = 40_000_000  # larger images (e.g. decompression bombs) are answered 413 before decoding
    body_timeout_s: float = 30.0  # a client that takes longer to send its body is answered 408
    alpha: float = 0.5  # overlay: weight of the class colours
    warmup_size: list[int] = field(default_factory=list)  # [height, width] run once at start (a path compiled per shape pays then); []: the model's training size

    def __post_init__(self) -> None:
        for key in ("max_batch", "max_queue", "max_pixels"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("max_body_mb", "body_timeout_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: must be positive, got {getattr(self, key)}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms: must be >= 0, got {self.max_wait_ms}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port: must be 0..65535, got {self.port}")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha: must be between 0 and 1, got {self.alpha}")
        if self.warmup_size and (len(self.warmup_size) != 2 or min(self.warmup_size) < 1):
            raise ConfigError(f"warmup_size: must be [height, width] or [], got {self.warmup_size}")
        if self.label_path not in LABEL_PATHS:
            raise ConfigError(f"label_path: must be one of {', '.join(LABEL_PATHS)}, got {self.label_path!r}")
        if self.threads < 0:
            raise ConfigError(f"threads: must be >= 0 (0: default), got {self.threads}")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)
