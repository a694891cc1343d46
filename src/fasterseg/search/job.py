"""The whole search as one job: latency table -> pretraining -> co-search -> genotypes.

This joins the pieces: the latency table (file or named profile) gives both the differentiable
supernet latency of the architecture step (decoupled into the paper's three terms, or coupled
for the collapse ablation) and the table latency of derived networks used each epoch to pick
the branch pairing and adapt the latency weight to the FPS window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from fasterseg.config import save_config
from fasterseg.errors import ConfigError
from fasterseg.genotype import Genotype
from fasterseg.latency.lut import LatencyTable
from fasterseg.latency.official import load_table
from fasterseg.latency.model import (
    SupernetLatencyLUT, decoupled_latency, fixed_ratios, network_latency, supernet_latency,
)
from fasterseg.search.checkpoint import checkpoint_next_epoch, has_checkpoint
from fasterseg.search.config import SearchJobConfig, phase_config
from fasterseg.search.loop import RESUMABLE_CHANGES, changed_settings, run_phase
from fasterseg.space.config import SupernetConfig
from fasterseg.space.supernet import Supernet
from fasterseg.utils.device import resolve_device
from fasterseg.utils.env import environment
from fasterseg.utils.io import atomic_write_text
from fasterseg.utils.memory import keep_freed_memory
from fasterseg.utils.runlock import run_lock


def split_weights(split: Sequence[float], widths_searched: bool) -> tuple[float, ...] | None:
    """The decoupled terms' weights from ``latency_split``, normalised to sum 1 like the paper's (an
    architecture without width search has no widths term, so only the first two count); None for ``()``:
    the paper's."""
    if not split:
        return None
    used = tuple(float(v) for v in (split if widths_searched else split[:2]))
    if sum(used) <= 0:
        raise ConfigError(f"latency_split: {list(split)} leaves no weight on the terms of an architecture that searches "
                          "no widths (ops and down-sampling are both 0)")
    return tuple(v / sum(used) for v in used)


class LatencyModel:
    """The table seen by the search: differentiable supernet latency and derived-network ms."""

    def __init__(self, table: LatencyTable, supernet: SupernetConfig, size: tuple[int, int], terms: str = "decoupled",
                 split: Sequence[float] = ()):
        self.table, self.size, self.terms, self.supernet = table, tuple(size), terms, supernet
        self.split = tuple(float(v) for v in split)  # (): the paper's split of the decoupled terms
        self.luts = {a.name: SupernetLatencyLUT(table, supernet, a.name, self.size) for a in supernet.archs}

    def supernet_ms(self, net: Supernet, arch: str) -> torch.Tensor:
        params = net.arch[arch]
        lut = self.luts[arch]
        ratios = net.width_one_hots(arch)
        if self.terms == "decoupled":
            return decoupled_latency(lut, params.alphas, params.betas, ratios, weights=self._weights(ratios is not None))
        widest = fixed_ratios(lut.space, dtype=params.alphas[0].dtype)
        return supernet_latency(lut, params.alphas, params.betas, ratios if ratios is not None else widest)

    def _weights(self, widths_searched: bool) -> tuple[float, ...] | None:
        return split_weights(self.split, widths_searched)

    def genotype_ms(self, genotype: Genotype) -> float:
        return network_latency(genotype, self.table, self.size).total_ms


def run_search(job: SearchJobConfig, resume: bool = False) -> dict:
    """Pretrain then co-search into ``out_dir/name``; returns the final genotypes' summary.

    Everything is checked (data, table entries) before the run directory is written, so a start
    that fails leaves nothing that blocks the next try; a resumed run keeps its saved config.
    Under ``torchrun`` every process runs the job and only the first writes files.
    """
    from fasterseg.distributed import cleanup, init_distributed

    if not job.data:
        raise ConfigError("data: a dataset spec is required (e.g. --data synth:data/synth)")
    if job.keep_freed_memory:
        keep_freed_memory()
    device = resolve_device(job.device)
    info = init_distributed(device.type)
    try:
        if device.type == "cuda" and info.enabled:
            device = torch.device("cuda", info.local_rank)
        run_dir = Path(job.out_dir) / job.name
        with run_lock(run_dir, enabled=info.is_main):
            return _run_locked(job, run_dir, resume, device, info.is_main)
    finally:
        cleanup(info)  # leave the process group as training does, so a caller may start another


def _run_locked(job: SearchJobConfig, run_dir: Path, resume: bool, device: torch.device, is_main: bool) -> dict:
    from fasterseg.latency.lut import MissingEntriesError

    shared = bool(job.pretrained_from)  # the pretraining is another run's, checked to be the one this job would compute
    pre_dir = _shared_pretraining(job) if shared else run_dir / "pretrain"
    search_dir = run_dir / "search"
    started = has_checkpoint(search_dir) if shared else has_checkpoint(pre_dir) or (pre_dir / "done").exists()
    if not resume and started:
        raise ConfigError(f"{run_dir} already holds a search; pass --resume to continue it or choose another name")
    try:
        model = LatencyModel(load_table(job.lut), job.supernet, job.latency_size, job.latency_terms, job.latency_split)
    except MissingEntriesError as exc:
        raise ConfigError(
            f"{exc}\nThe table must cover this search space at latency_size {job.latency_size[0]}x{job.latency_size[1]} "
            f"(layers {job.supernet.layers}, base_channels {job.supernet.base_channels}, widths {job.supernet.width_choices}, "
            f"{job.supernet.num_classes} classes): build it with `fasterseg lut build --size ... --space FILE` "
            f"(or --set num_classes={job.supernet.num_classes})."
        ) from None
    if not any(ms > 0 for ms in model.table.entries.values()):
        raise ConfigError(f"{job.lut}: every entry of the latency table is 0 ms, so no network is faster than another "
                          "and the FPS window cannot be met; measure the table with `fasterseg lut build`")
    pretrain_cfg = phase_config(job, job.pretrain, pretrain=True)
    done_marker = pre_dir / "done"
    rewrite_config = _check_job_resumable(job, run_dir, pre_dir, search_dir) if resume else False
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume or rewrite_config:
            save_config(job, run_dir / "config.yaml")
        if not resume:
            atomic_write_text(run_dir / "environment.json", json.dumps(environment(), indent=2) + "\n")

    if not shared:
        pretrained_to = checkpoint_next_epoch(pre_dir)
        if done_marker.exists() and pretrained_to is not None and pretrained_to < job.pretrain.epochs and is_main:
            done_marker.unlink()  # pretraining was lengthened on resume: it continues first
        if not done_marker.exists():
            run_phase(pretrain_cfg, pre_dir, device=device, resume=resume and has_checkpoint(pre_dir))
            if is_main:
                atomic_write_text(done_marker, "ok\n")
    search_cfg = phase_config(job, job.search, pretrain=False)
    run_phase(search_cfg, search_dir, latency_fn=model.supernet_ms, init_weights=pre_dir / "weights.safetensors",
              device=device, genotype_latency=model.genotype_ms, resume=resume and has_checkpoint(search_dir))
    summary = {}
    if not is_main:
        return summary
    for a in job.supernet.archs:
        path = search_dir / f"{a.name}.json"
        if path.exists():
            data = json.loads(path.read_text())
            genotype = Genotype.from_dict(data["genotype"], source=str(path))
            out = run_dir / f"{a.name}.json"
            genotype.save(out)
            lat = network_latency(genotype, model.table, model.size)
            summary[a.name] = {"genotype": str(out), "latency_ms": lat.total_ms, "fps": lat.fps,
                               "ends": list(genotype.ends), "miou": data.get("miou"),
                               "candidates_latency_ms": data.get("latency_ms")}
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


# Pretraining settings that change only how its epochs were scored, not the weights it ends with
_SCORING_ONLY = tuple(k for k in RESUMABLE_CHANGES if k != "epochs")


def _shared_pretraining(job: SearchJobConfig) -> Path:
    """The pretraining folder of run ``job.pretrained_from``, refused unless it is finished and
    is the pretraining this job would compute (same supernet, data and pretrain settings).

    Why: pretraining does not see the latency table or the FPS window, so searches at several
    windows (a latency family) can share one pretraining and pay only for their search phases.
    """
    import yaml

    from fasterseg.config import to_dict

    source = Path(job.pretrained_from)
    saved = source / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"pretrained_from: {source} is not a search run (no {saved.name} in it)")
    old = yaml.safe_load(saved.read_text())
    if old.get("pretrained_from"):
        raise ConfigError(f"pretrained_from: {source} did not pretrain itself; name the run it started from, "
                          f"{old['pretrained_from']}")
    pre_dir = source / "pretrain"
    if not (pre_dir / "done").exists() or not (pre_dir / "weights.safetensors").is_file():
        raise ConfigError(f"pretrained_from: {source} has not finished its pretraining (no {pre_dir / 'done'}); "
                          f"finish it with `fasterseg search --resume {source}` first")
    differ = [k for k in changed_settings(old, to_dict(job))
              if k.partition(".")[0] in ("supernet", "data", "train_split")
              or (k.startswith("pretrain.") and k.rpartition(".")[2] not in _SCORING_ONLY)]
    if differ:
        raise ConfigError(f"pretrained_from: {source} pretrained with other settings for {differ}; a search may start "
                          "from another run's pretraining only where it would have computed the same one")
    return pre_dir


def _check_job_resumable(job: SearchJobConfig, run_dir: Path, pre_dir: Path, search_dir: Path) -> bool:
    """Refuse, before anything is written, a resume whose ``--set`` would change what the search
    has computed; a begun phase may get more epochs or other scoring settings, a phase not begun
    any settings. Returns True when the job's saved config must be rewritten."""
    import yaml

    from fasterseg.config import to_dict

    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return False
    changed = changed_settings(yaml.safe_load(saved.read_text()), to_dict(job))
    begun = {"pretrain": has_checkpoint(pre_dir) or (pre_dir / "done").exists(), "search": has_checkpoint(search_dir)}

    def may_change(key: str) -> bool:
        phase = key.partition(".")[0]
        if phase in begun and not begun[phase]:
            return True  # a phase that has not begun takes its settings from the resumed config
        return key.rpartition(".")[2] in RESUMABLE_CHANGES or key in ("name", "out_dir")

    fixed = [k for k in changed if not may_change(k)]
    if fixed:
        raise ConfigError(f"{saved}: the search was started with other settings for {fixed}; resume with the same "
                          f"config (a begun phase's {', '.join(RESUMABLE_CHANGES)} may change, and any setting of a "
                          "phase not begun yet)")
    pretrained_to = checkpoint_next_epoch(pre_dir)
    if pretrained_to is not None and pretrained_to < job.pretrain.epochs and has_checkpoint(search_dir):
        raise ConfigError(f"pretrain.epochs={job.pretrain.epochs}: {run_dir} has already begun its search phase from "
                          f"{pretrained_to} pretraining epochs, so pretraining can no longer be lengthened")
    return bool([k for k in changed if k not in ("name", "out_dir")])
