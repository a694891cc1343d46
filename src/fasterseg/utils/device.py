"""Which torch device a run's ``device`` setting names: one rule for training and search."""

from __future__ import annotations

import torch

from fasterseg.config import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when there is one, else the CPU; asking for CUDA without one is an error
    here rather than a failure deep inside the first forward pass."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA device is available (use device=cpu or auto)")
    return torch.device(name)
