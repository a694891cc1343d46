"""Everything a search phase needs to continue exactly where it stopped, without pickle.

Tensors (supernet, optimiser buffers, the RNG state) go to ``checkpoint.safetensors``; the
rest (epoch, optimiser hyper-parameters, scheduler counters, adapted latency weights) to
``checkpoint.json``. Both are replaced atomically at the end of every epoch, the JSON last,
so a checkpoint is either the previous epoch's or the new one, never a mix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from fasterseg.errors import ModelFileError
from fasterseg.utils.io import atomic_path, atomic_write_text

TENSORS = "checkpoint.safetensors"
META = "checkpoint.json"


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    sd = opt.state_dict()
    plain: dict[str, dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(idx), {})[key] = value
    return {"param_groups": sd["param_groups"], "state": plain}


def _unflatten_optimizer(prefix: str, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta["state"].items():
        state.setdefault(int(idx), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


@dataclass
class Resumed:
    next_epoch: int
    latency_weights: dict[str, float]


def save_checkpoint(run_dir: Path, epoch: int, net: torch.nn.Module, weights_opt: torch.optim.Optimizer,
                    arch_opts: dict[str, torch.optim.Optimizer], schedule, latency_weights: dict[str, float]) -> None:
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "epoch": epoch,
        "optimizers": {"weights": _flatten_optimizer("opt.weights", weights_opt, tensors)},
        "schedule": schedule.state_dict(),
        "latency_weights": latency_weights,
    }
    for name, opt in arch_opts.items():
        meta["optimizers"][f"arch.{name}"] = _flatten_optimizer(f"opt.arch.{name}", opt, tensors)
    with atomic_path(run_dir / TENSORS) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_text(run_dir / META, json.dumps(meta, indent=1) + "\n")


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / META).is_file() and (run_dir / TENSORS).is_file()


def load_checkpoint(run_dir: Path, net: torch.nn.Module, weights_opt: torch.optim.Optimizer,
                    arch_opts: dict[str, torch.optim.Optimizer], schedule) -> Resumed:
    """Restore every piece of state in place; returns where to continue."""
    try:
        meta = json.loads((run_dir / META).read_text())
        tensors = load_file(str(run_dir / TENSORS))
    except (OSError, json.JSONDecodeError, RuntimeError) as exc:
        raise ModelFileError(f"{run_dir}: cannot read the search checkpoint ({exc})") from None
    for key in ("epoch", "optimizers", "schedule", "latency_weights"):
        if key not in meta:
            raise ModelFileError(f"{run_dir / META}: missing field '{key}'")
    net_state = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
    try:
        net.load_state_dict(net_state)
    except RuntimeError as exc:
        raise ModelFileError(f"{run_dir / TENSORS}: does not fit this supernet ({str(exc).splitlines()[0]})") from None
    weights_opt.load_state_dict(_unflatten_optimizer("opt.weights", meta["optimizers"]["weights"], tensors))
    for name, opt in arch_opts.items():
        key = f"arch.{name}"
        if key not in meta["optimizers"]:
            raise ModelFileError(f"{run_dir / META}: no optimiser state for architecture {name!r}")
        opt.load_state_dict(_unflatten_optimizer(f"opt.{key}", meta["optimizers"][key], tensors))
    schedule.load_state_dict(meta["schedule"])
    torch.set_rng_state(tensors["rng.torch"])
    return Resumed(int(meta["epoch"]) + 1, {k: float(v) for k, v in meta["latency_weights"].items()})
