"""A training run in one small file that a repository can carry from machine to machine.

A run folder's ``checkpoint.safetensors`` (this format at full precision) continues a run exactly, but only where the folder survives; a
long CamVid recipe outlasts a working session and its machine. The compact checkpoint holds what
``--resume`` needs (weights, optimiser state, scaler, epoch, best score, history, RNG, the weights'
moving average when kept) plus what
rebuilds the folder (config, genotype, fine-tuning record), as safetensors with a JSON header: no
pickle. It keeps the most precise form that fits ``max_mb``:

* ``fp32``: everything as trained; a continued run is the uninterrupted one, bit for bit;
* ``fp32+bf16``: optimiser moments in bfloat16 (their range, 3 significant digits);
* ``fp16+bf16``: weights in float16 as well (a tensor beyond float16's range stays fp32).

Rounding the weights to float16 moves each by at most 1/2048 of itself, far less than one Adam
step early in a run; a continued run then ends within the noise of seeds, not bit for bit
(tests/train/test_compact.py measures it).

A network too large for even the smallest level (a few million parameters with Adam's two
moments) is split: ``compact.safetensors`` keeps the header and names its parts
(``compact.e00420.part01.<sha256[:12]>.safetensors``, ... beside it, each at most ``max_mb``,
each with its SHA-256), so that a repository that takes files of at most 10 MB still carries the run.
:func:`compact_files` lists what to copy and :func:`copy_compact` copies a checkpoint under
another name, its parts renamed with it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save, save_file

from fasterseg.errors import TrainingError
from fasterseg.utils.io import atomic_path, atomic_write_text
from fasterseg.utils.optimstate import flatten_optimizer, unflatten_optimizer

FORMAT = "fasterseg-train-compact/1"
PART_FORMAT = "fasterseg-train-compact-part/1"
COMPACT = "compact.safetensors"  # its name inside a run folder
CONTINUED_FROM = "continued_from.json"  # in a run folder laid out from a compact checkpoint
LEVELS = ("fp32", "fp32+bf16", "fp16+bf16")  # (weights + optimiser moments), most precise first
_FP16_MAX = 65000.0
_PART_OVERHEAD = 4096  # a part's JSON header and alignment, beside its tensors' bytes
_PART_NAME = re.compile(r"^.+\.(e\d{5}\.part\d{2,}\.[0-9a-f]{12}\.safetensors)$")  # STEM.e00420.part01.<sha256[:12]>.safetensors


@dataclass
class TrainState:
    """Everything a resumed run restores (what a checkpoint holds)."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    epoch: int  # the last finished epoch, counted from 0
    best_miou: float | None
    history: list[dict]
    rng_cpu: torch.Tensor
    ema: dict[str, torch.Tensor] | None = None  # the weights' moving average, when the run keeps one


@dataclass
class RunRecord:
    """What rebuilds the run folder on another machine."""

    config: dict[str, Any]  # the resolved TrainConfig as a dict
    genotype: dict[str, Any] | None  # None for a registered network (config's ``network``)
    init: dict[str, Any] | None  # init.json of a fine-tuned run


def _weights(model: dict[str, torch.Tensor], half: bool, prefix: str = "model") -> dict[str, torch.Tensor]:
    out = {}
    for key, value in model.items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point() and (value.numel() == 0 or float(value.abs().max()) < _FP16_MAX):
            value = value.half()
        out[f"{prefix}.{key}"] = value
    return out


def _moments(optimizer: dict[str, Any], low: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    plain = flatten_optimizer("opt", optimizer, tensors)
    if low:  # buffers (momentum, Adam's moments); the scalar step counters stay exact
        tensors = {k: (v.bfloat16() if v.is_floating_point() and v.numel() > 1 else v) for k, v in tensors.items()}
    return tensors, plain


def _nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def save_compact(path: Path, state: TrainState, record: RunRecord, max_mb: float = 10.0) -> str:
    """Write ``state`` and ``record`` to ``path`` (whole or not at all) in the most precise
    level of :data:`LEVELS` that fits ``max_mb`` megabytes (10^6 bytes); returns the level. When
    none fits, the smallest is split into parts of at most ``max_mb`` beside ``path`` (see the
    module's docstring); a single tensor over the limit still goes into a part of its own, and the
    caller is told by the level's ``!`` suffix."""
    header = {
        "format": FORMAT,
        "epoch": str(state.epoch),
        "best_miou": json.dumps(state.best_miou),
        "history": json.dumps(state.history),
        "scaler": json.dumps(state.scaler),
        "config": json.dumps(record.config),
        "genotype": json.dumps(record.genotype),
        "init": json.dumps(record.init),
    }
    header_bytes = sum(len(k) + len(v) for k, v in header.items()) + 4096
    for level in LEVELS:
        weights = _weights(state.model, half=level.startswith("fp16"))
        if state.ema is not None:
            weights.update(_weights(state.ema, half=level.startswith("fp16"), prefix="ema"))
        moments, plain = _moments(state.optimizer, low=level.endswith("bf16"))
        tensors = {**weights, **moments, "rng.torch": state.rng_cpu.cpu().contiguous()}
        fits = _nbytes(tensors) + header_bytes + len(json.dumps(plain)) + 128 * len(tensors) <= max_mb * 1e6
        if fits:
            break
    header["level"] = level
    header["optimizer"] = json.dumps(plain)
    path = Path(path)
    digests: dict[str, str] = {}  # part name -> its SHA-256 (none when the checkpoint fits one file)
    if not fits:  # even the smallest level is over the limit: split it into parts that are not
        rng = tensors.pop("rng.torch")
        parts = _split(tensors, max_mb * 1e6 - _PART_OVERHEAD)
        tensors = {"rng.torch": rng}
        for k, part in enumerate(parts, 1):
            data = save(part, metadata={"format": PART_FORMAT})
            digest = hashlib.sha256(data).hexdigest()
            # named by content: writing a part never touches one the previous header names
            name = f"{path.stem}.e{state.epoch:05d}.part{k:02d}.{digest[:12]}.safetensors"
            with atomic_path(path.parent / name) as tmp:
                tmp.write_bytes(data)
            digests[name] = digest
        header["parts"] = json.dumps(digests)
        if any(_nbytes(part) + _PART_OVERHEAD > max_mb * 1e6 for part in parts):
            level += "!"  # a single tensor over the limit
    with atomic_path(path) as tmp:  # the header last: until it is renamed, the previous checkpoint stands whole
        save_file(tensors, str(tmp), metadata=header)
    _remove_stale_parts(path, keep=list(digests))
    return level


def _split(tensors: dict[str, torch.Tensor], budget: float) -> list[dict[str, torch.Tensor]]:
    """Consecutive groups of ``tensors`` of at most ``budget`` bytes each (a larger tensor alone)."""
    parts: list[dict[str, torch.Tensor]] = [{}]
    for key, value in tensors.items():
        if parts[-1] and _nbytes(parts[-1]) + value.numel() * value.element_size() > budget:
            parts.append({})
        parts[-1][key] = value
    return parts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()  # hashlib.file_digest is Python 3.11+; we support 3.10
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _part_names(path: Path) -> dict[str, str]:
    """The parts a compact checkpoint's header names, with their SHA-256 (none for a single file)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (OSError, SafetensorError) as exc:
        raise TrainingError(f"{path}: cannot read it as a compact training checkpoint ({exc})") from None
    return json.loads(header.get("parts", "{}"))


def _remove_stale_parts(path: Path, keep: list[str]) -> None:
    for old in path.parent.glob(f"{path.stem}.e*.part*.safetensors"):
        if old.name not in keep:
            old.unlink()


def compact_files(path: Path) -> list[Path]:
    """Every file a compact checkpoint consists of: ``path`` and, for a split one, its parts."""
    path = Path(path)
    return [path, *(path.parent / name for name in _part_names(path))]


def copy_compact(source: Path, dest: Path) -> list[Path]:
    """Copy a compact checkpoint to ``dest`` (its parts renamed after ``dest``, the header naming
    them), replacing what ``dest`` held; returns the files written. Checks every part first."""
    source, dest = Path(source), Path(dest)
    read_compact(source)  # refuses a missing or altered part before anything is written
    parts = _part_names(source)
    if not parts:
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)
        _remove_stale_parts(dest, keep=[])
        return [dest]
    renamed = {}
    for name, digest in parts.items():
        new = f"{dest.stem}.{_PART_NAME.match(name).group(1)}"
        with atomic_path(dest.parent / new) as tmp:
            shutil.copyfile(source.parent / name, tmp)
        renamed[new] = digest
    with safe_open(str(source), framework="pt") as f:
        header = dict(f.metadata() or {})
    header["parts"] = json.dumps(renamed)
    with atomic_path(dest) as tmp:
        save_file(load_file(str(source)), str(tmp), metadata=header)
    _remove_stale_parts(dest, keep=list(renamed))
    return [dest, *(dest.parent / name for name in renamed)]


def read_compact(path: Path) -> tuple[TrainState, RunRecord]:
    """The state and run record of a compact checkpoint, tensors back in float32 where they were
    rounded (the optimiser casts its buffers to the parameters' dtype when loading)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise TrainingError(f"{path}: cannot read it as a compact training checkpoint ({exc})") from None
    if header.get("format") != FORMAT:
        raise TrainingError(f"{path}: not a compact training checkpoint (format {header.get('format')!r}, "
                            f"expected {FORMAT!r})")
    try:
        fields = {k: json.loads(header[k]) for k in ("epoch", "best_miou", "history", "scaler", "config", "genotype",
                                                     "init", "optimizer")}
    except KeyError as exc:
        raise TrainingError(f"{path}: the header has no {exc.args[0]!r}") from None
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{path}: a header field is not valid JSON ({exc})") from None
    try:
        parts = json.loads(header.get("parts", "{}"))
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{path}: its list of parts is not valid JSON ({exc})") from None
    for name, digest in parts.items():
        part = path.parent / name
        if not _PART_NAME.match(name) or Path(name).name != name:
            raise TrainingError(f"{path}: names a part {name!r} that is not a file name this format writes")
        if not part.is_file():
            raise TrainingError(f"{path}: its part {name} is missing (a split checkpoint is the header file and every "
                                "part it names, side by side)")
        if _sha256(part) != digest:
            raise TrainingError(f"{path}: its part {name} is not the one this checkpoint wrote (SHA-256 differs)")
        tensors.update(load_file(str(part)))
    if "rng.torch" not in tensors:
        raise TrainingError(f"{path}: no RNG state ('rng.torch')")
    widened = {k: (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v) for k, v in tensors.items()}
    model = {k[len("model."):]: v for k, v in widened.items() if k.startswith("model.")}
    ema = {k[len("ema."):]: v for k, v in widened.items() if k.startswith("ema.")} or None
    optimizer = unflatten_optimizer("opt", fields["optimizer"], {k: v for k, v in widened.items() if k.startswith("opt.")})
    state = TrainState(model=model, optimizer=optimizer, scaler=fields["scaler"], epoch=int(fields["epoch"]),
                       best_miou=fields["best_miou"], history=fields["history"], rng_cpu=tensors["rng.torch"], ema=ema)
    return state, RunRecord(config=fields["config"], genotype=fields["genotype"], init=fields["init"])


def compact_level(path: Path) -> str:
    """The precision level a compact checkpoint was written at (see :data:`LEVELS`)."""
    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("level", "?")


def unpack_run(path: Path, run_dir: Path) -> None:
    """Lay out ``run_dir`` from a compact checkpoint so that ``--resume run_dir`` continues it:
    config, genotype, fine-tuning record, and ``continued_from.json`` naming the file, which the
    trainer restores from (and rebuilds the per-epoch log from its history) while the folder has
    no checkpoint of its own. Refuses a folder that holds a run."""
    import yaml

    state, record = read_compact(path)
    if any((run_dir / name).exists() for name in ("checkpoint.safetensors", "checkpoint.pt", "config.yaml")):
        raise TrainingError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, "
                            "or give --name/--out-dir a new folder for the compact checkpoint")
    run_dir.mkdir(parents=True, exist_ok=True)
    if record.genotype is not None:
        atomic_write_text(run_dir / "genotype.json", json.dumps(record.genotype, indent=2) + "\n")
    if record.init is not None:
        atomic_write_text(run_dir / "init.json", json.dumps(record.init, indent=2) + "\n")
    note = {"compact": str(Path(path).resolve()), "epochs_done": state.epoch + 1, "level": compact_level(path)}
    atomic_write_text(run_dir / CONTINUED_FROM, json.dumps(note, indent=2) + "\n")
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(record.config, sort_keys=False))  # last: it marks a run
