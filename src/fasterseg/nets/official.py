"""Reading the official FasterSeg release: ``arch_*.pt`` and ``weights*.pt`` files.

Both are pickles. We load them with PyTorch's restricted (weights-only) unpickler and an
explicit allow-list for the numpy scalars the architecture files contain, so a file that tries
to run code is refused before anything in it executes.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fasterseg.errors import ModelFileError, UnsafeFileError
from fasterseg.genotype import Genotype
from fasterseg.nets.derive import ArchParams, choose_ends, derive_genotype
from fasterseg.nets.network import FasterSegNet

# The settings the official release was searched and trained with.
OFFICIAL_WIDTH_CHOICES = (4 / 12, 6 / 12, 8 / 12, 10 / 12, 1.0)
OFFICIAL_STEM_HEAD_WIDTH = {"teacher": (1.0, 1.0), "student": (8 / 12, 8 / 12)}
OFFICIAL_BASE_CHANNELS = 12
OFFICIAL_NUM_CLASSES = 19


def _numpy_allow_list() -> list:
    """numpy globals that arch files pickle (scalars of float64); both numpy 1 and 2 names."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    allowed = [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"), np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed.append(dtypes.Float64DType)
        allowed.append(dtypes.Float32DType)
    return allowed


def safe_torch_load(path: str | Path, allow_numpy: bool = False):
    """``torch.load`` that never runs code from the file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        if allow_numpy:
            with torch.serialization.safe_globals(_numpy_allow_list()):
                return torch.load(path, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).split("\n")
        reason = next((line.strip() for line in first if "Unsupported global" in line or "GLOBAL" in line), first[0])
        raise UnsafeFileError(f"{path}: refused to unpickle: it needs objects outside the allow-list ({reason})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0] or "empty or truncated file"
        raise ModelFileError(f"{path}: not a readable PyTorch file ({reason})") from None


@dataclass
class OfficialArch:
    """What an official ``arch_{i}.pt`` holds."""

    index: int
    params: ArchParams
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return "teacher" if self.index == 0 else "student"


def load_official_arch(path: str | Path) -> OfficialArch:
    state = safe_torch_load(path, allow_numpy=True)
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: expected a dict of architecture parameters, got {type(state).__name__}")
    indices = {int(m.group(1)) for k in state if (m := re.fullmatch(r"alpha_(\d+)_0", str(k)))}
    if len(indices) != 1:
        raise ModelFileError(f"{path}: expected exactly one 'alpha_<i>_0' key, found {sorted(indices) or 'none'}")
    i = indices.pop()

    def tensor(key: str) -> torch.Tensor:
        if key not in state:
            raise ModelFileError(f"{path}: missing key '{key}'")
        value = state[key]
        if not isinstance(value, torch.Tensor) or value.dim() != 2:
            raise ModelFileError(f"{path}: '{key}' must be a 2-d tensor")
        return value.detach().float()

    params = ArchParams(
        alphas=[tensor(f"alpha_{i}_{s}") for s in range(3)],
        betas=[None, tensor(f"beta_{i}_1"), tensor(f"beta_{i}_2")],
        ratios=[tensor(f"ratio_{i}_{s}") for s in range(3)],
    )
    layers = params.layers
    expected = {
        f"alpha_{i}_1": (layers - 1, None), f"alpha_{i}_2": (layers - 2, None),
        f"beta_{i}_1": (layers - 2, 2), f"beta_{i}_2": (layers - 3, 2),
    }
    for key, (rows, cols) in expected.items():
        shape = tuple(state[key].shape)
        if shape[0] != rows or (cols is not None and shape[1] != cols):
            raise ModelFileError(f"{path}: '{key}' has shape {shape}, expected ({rows}, {cols or 'ops'}) for {layers} layers")
    metrics = {}
    for key in ("mIoU02", "latency02", "mIoU12", "latency12"):
        if key in state:
            metrics[key] = float(state[key])
    return OfficialArch(index=i, params=params, metrics=metrics)


def official_genotype(arch: OfficialArch, role: str | None = None, num_classes: int = OFFICIAL_NUM_CLASSES) -> Genotype:
    """The network the official ``train.py`` builds from this arch file."""
    role = role or arch.role
    if role not in OFFICIAL_STEM_HEAD_WIDTH:
        raise ValueError(f"role must be 'teacher' or 'student', got {role!r}")
    m = arch.metrics
    missing = [k for k in ("mIoU02", "latency02", "mIoU12", "latency12") if k not in m]
    if missing:
        raise ModelFileError(f"arch file lacks {missing}, needed to choose the branch pairing")
    ends = choose_ends(m["mIoU02"], m["latency02"], m["mIoU12"], m["latency12"])
    stem_width, head_width = OFFICIAL_STEM_HEAD_WIDTH[role]
    return derive_genotype(
        arch.params, ends, OFFICIAL_WIDTH_CHOICES, stem_width, head_width,
        num_classes=num_classes, base_channels=OFFICIAL_BASE_CHANNELS, ignore_skip=(role == "teacher"),
    )


# Official parameters that the official forward never uses.
UNUSED_PREFIXES = ("ffm.channel_attention.",)


@dataclass
class ConversionReport:
    dropped_unused: list[str]
    merged_shared: list[str]


def convert_official_state_dict(state: dict, model: FasterSegNet, source: str = "weights") -> tuple[dict, ConversionReport]:
    """Map an official ``Network_Multi_Path_Infer`` state dict onto ``model``'s names.

    Cells shared by several branches appear once per branch in the official dict; we keep the
    first branch's copy after checking the others are identical.
    """
    if not isinstance(state, dict):
        raise ModelFileError(f"{source}: expected a state dict, got {type(state).__name__}")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    ours = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    dropped, merged, unexpected = [], [], []
    shared_copies: list[tuple[str, str, torch.Tensor]] = []
    for key, value in state.items():
        key = str(key).removeprefix("module.")
        if key.startswith(UNUSED_PREFIXES):
            dropped.append(key)
            continue
        m = re.fullmatch(r"cells\.(\d+)-(\d+)\._op\._op\.(.+)", key)
        if m:
            layer, branch, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            leader = next((s for s in model.plan[layer] if branch in s.branches), None) if layer < len(model.plan) else None
            if leader is None:
                unexpected.append(key)
                continue
            new_key = f"cells.{leader.key}.{rest}"
            if leader.branches[0] != branch:
                merged.append(key)
                shared_copies.append((key, new_key, value))
                continue
            key = new_key
        if key not in ours:
            unexpected.append(key)
            continue
        if not isinstance(value, torch.Tensor):
            raise ModelFileError(f"{source}: '{key}' is not a tensor")
        if tuple(value.shape) != tuple(ours[key].shape):
            raise ModelFileError(f"{source}: '{key}' has shape {tuple(value.shape)}, the network needs {tuple(ours[key].shape)}")
        converted[key] = value
    for key, new_key, value in shared_copies:
        if new_key in converted and not torch.equal(converted[new_key], value):
            raise ModelFileError(f"{source}: '{key}' belongs to a cell shared between branches but differs from '{new_key}'")
    missing = sorted(set(ours) - set(converted))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s): {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        raise ModelFileError(f"{source}: does not match the architecture; " + "; ".join(parts))
    return converted, ConversionReport(dropped_unused=dropped, merged_shared=merged)


def has_aux_heads(state: dict) -> bool:
    """Whether an official state dict carries the training-only 1/16 and 1/32 heads."""
    return any(str(k).removeprefix("module.").startswith(("heads16.", "heads32.")) for k in state)
