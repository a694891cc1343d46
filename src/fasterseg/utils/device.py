"""Which torch device a run's ``device`` setting names: one rule for training and search."""

from __future__ import annotations

import torch

from fasterseg.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when there is one, else the CPU; asking for CUDA without one is an error
    here rather than a failure deep inside the first forward pass."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA device is available (use device=cpu or auto)")
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` has native bf16 arithmetic (CPU: AVX512-BF16 or AMX, as oneDNN reports)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(requested: str, device: torch.device, note=print) -> str:
    """The autocast precision a run uses: ``auto`` is bf16 where the device computes it natively
    and fp32 elsewhere; an explicit bf16 on a device without it falls back to fp32 with a note
    (emulated bf16 is slower than fp32); fp16 is for CUDA only."""
    if requested == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if requested == "bf16" and not bf16_supported(device):
        note(f"precision=bf16: this {device.type.upper()} has no native bf16 support; training in fp32")
        return "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError("precision=fp16 needs a CUDA device; on the CPU use bf16 (or auto)")
    return requested
