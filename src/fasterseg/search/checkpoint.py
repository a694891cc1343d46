"""Everything a search phase needs to continue exactly where it stopped, without pickle.

Tensors (supernet, optimiser buffers, the RNG state) go to ``checkpoint-eNNNN.safetensors``
(one file per epoch); the rest (epoch, optimiser hyper-parameters, scheduler counters, adapted
latency weights) and the name of that tensor file to ``checkpoint.json``. A checkpoint written
inside an epoch (``checkpoint-eNNNN-sNNNNN.safetensors``, after that many of its steps) also
records the steps done and the epoch's running loss sums, so that a resume continues at the next
step as if the run had not stopped. Each file is written
under a temporary name, flushed to disk and renamed; the JSON is renamed last and only then is
the previous epoch's tensor file removed. Whenever the process dies, ``checkpoint.json`` names
a complete tensor file of its own epoch: a checkpoint is one epoch's, never a mix of two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from fasterseg.errors import ModelFileError
from fasterseg.utils.io import atomic_path, atomic_write_text
from fasterseg.utils.optimstate import flatten_optimizer, unflatten_optimizer

TENSORS = "checkpoint.safetensors"  # the one tensor file of checkpoints written before per-epoch names
META = "checkpoint.json"


def tensors_name(epoch: int, step: int | None = None) -> str:
    return f"checkpoint-e{epoch:04d}.safetensors" if step is None else f"checkpoint-e{epoch:04d}-s{step:05d}.safetensors"


@dataclass
class PartialEpoch:
    """An epoch stopped after ``steps`` of its steps: what its record has summed so far."""

    epoch: int
    steps: int
    weight_loss_sum: float
    arch_loss_sum: float
    latency: dict[str, float]


@dataclass
class Resumed:
    next_epoch: int
    latency_weights: dict[str, float]
    partial: PartialEpoch | None = None  # next_epoch's steps already taken


def save_checkpoint(run_dir: Path, epoch: int, net: torch.nn.Module, weights_opt: torch.optim.Optimizer,
                    arch_opts: dict[str, torch.optim.Optimizer], schedule, latency_weights: dict[str, float],
                    partial: PartialEpoch | None = None) -> None:
    """The state after ``epoch`` (or, with ``partial``, after ``partial.steps`` steps of the next one)."""
    if partial is not None and partial.epoch != epoch + 1:
        raise ValueError(f"a partial epoch {partial.epoch} follows finished epoch {partial.epoch - 1}, not {epoch}")
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "epoch": epoch,
        "tensors": tensors_name(epoch) if partial is None else tensors_name(partial.epoch, partial.steps),
        "optimizers": {"weights": flatten_optimizer("opt.weights", weights_opt.state_dict(), tensors)},
        "schedule": schedule.state_dict(),
        "latency_weights": latency_weights,
    }
    if partial is not None:
        meta["partial"] = {"epoch": partial.epoch, "steps": partial.steps, "weight_loss_sum": partial.weight_loss_sum,
                           "arch_loss_sum": partial.arch_loss_sum, "latency": partial.latency}
    for name, opt in arch_opts.items():
        meta["optimizers"][f"arch.{name}"] = flatten_optimizer(f"opt.arch.{name}", opt.state_dict(), tensors)
    with atomic_path(run_dir / meta["tensors"]) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_text(run_dir / META, json.dumps(meta, indent=1) + "\n")
    for old in run_dir.glob("checkpoint*.safetensors"):  # no longer named by the committed JSON
        if old.name != meta["tensors"]:
            old.unlink(missing_ok=True)


def _tensor_file(run_dir: Path, meta: dict) -> Path:
    return run_dir / meta.get("tensors", TENSORS)


def has_checkpoint(run_dir: Path) -> bool:
    try:
        meta = json.loads((run_dir / META).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and _tensor_file(run_dir, meta).is_file()


def checkpoint_next_epoch(run_dir: Path) -> int | None:
    """The epoch a resumed phase would start at (None: no checkpoint)."""
    if not has_checkpoint(run_dir):
        return None
    return int(json.loads((run_dir / META).read_text())["epoch"]) + 1


def load_checkpoint(run_dir: Path, net: torch.nn.Module, weights_opt: torch.optim.Optimizer,
                    arch_opts: dict[str, torch.optim.Optimizer], schedule) -> Resumed:
    """Restore every piece of state in place; returns where to continue."""
    try:
        meta = json.loads((run_dir / META).read_text())
        tensors = load_file(str(_tensor_file(run_dir, meta)))
    except (OSError, json.JSONDecodeError, RuntimeError) as exc:
        raise ModelFileError(f"{run_dir}: cannot read the search checkpoint ({exc})") from None
    for key in ("epoch", "optimizers", "schedule", "latency_weights"):
        if key not in meta:
            raise ModelFileError(f"{run_dir / META}: missing field '{key}'")
    net_state = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
    try:
        net.load_state_dict(net_state)
    except RuntimeError as exc:
        raise ModelFileError(f"{_tensor_file(run_dir, meta)}: does not fit this supernet ({str(exc).splitlines()[0]})") from None
    weights_opt.load_state_dict(unflatten_optimizer("opt.weights", meta["optimizers"]["weights"], tensors))
    for name, opt in arch_opts.items():
        key = f"arch.{name}"
        if key not in meta["optimizers"]:
            raise ModelFileError(f"{run_dir / META}: no optimiser state for architecture {name!r}")
        opt.load_state_dict(unflatten_optimizer(f"opt.{key}", meta["optimizers"][key], tensors))
    schedule.load_state_dict(meta["schedule"])
    torch.set_rng_state(tensors["rng.torch"])
    partial = None
    if meta.get("partial") is not None:
        p = meta["partial"]
        try:
            partial = PartialEpoch(int(p["epoch"]), int(p["steps"]), float(p["weight_loss_sum"]),
                                   float(p["arch_loss_sum"]), {k: float(v) for k, v in p["latency"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{run_dir / META}: unreadable field 'partial' ({exc!r})") from None
        if partial.epoch != int(meta["epoch"]) + 1 or partial.steps < 1:
            raise ModelFileError(f"{run_dir / META}: 'partial' names epoch {partial.epoch} after {partial.steps} steps, "
                                 f"but the last finished epoch is {meta['epoch']}")
    return Resumed(int(meta["epoch"]) + 1, {k: float(v) for k, v in meta["latency_weights"].items()}, partial)
