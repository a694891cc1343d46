"""The official FasterSeg latency table (GTX 1080Ti, TensorRT 5.1.5) as a named profile.

The official code names entries after its module classes (``BasicResidual2x_H128_W256_Cin32_
Cout32_stride1_dilation1``). :func:`official_to_spec` maps each name onto our canonical op spec:
FactorizedReduce -> skip, BasicResidual1x -> conv, BasicResidual_downup_1x -> conv_downup,
BasicResidual2x -> conv_2x, BasicResidual_downup_2x -> conv_2x_downup, ConvNorm (3x3, stride 2)
-> stem_conv, ConvNorm 1x1 -> arm, ConvNorm 3x3 stride 1 -> refine, ff -> ffm, head -> head.

Two approximations are inherent in the official figures and are kept, not hidden: its ``arm``
and ``head`` entries exclude the bilinear resizes that follow them in the network (the official
latency model ignores resizes), and its stride-1 ``skip`` entries were measured on the identity.
The converted figures ship with the package (``profiles/official_1080ti_trt5.json``) so that the
paper's search can be reproduced without that GPU; :data:`PROFILES` names them.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from fasterseg.latency.lut import LatencyTable, OpSpec, TableMeta
from fasterseg.errors import LatencyTableError

OFFICIAL_SIZE = (1024, 2048)
PROFILES = {"official-1080ti-trt5": "official_1080ti_trt5.json"}

_CELL_CLASSES = {
    "FactorizedReduce": "skip",
    "BasicResidual1x": "conv",
    "BasicResidual_downup_1x": "conv_downup",
    "BasicResidual2x": "conv_2x",
    "BasicResidual_downup_2x": "conv_2x_downup",
}
_CELL_RE = re.compile(r"(?P<cls>[A-Za-z0-9_]+?)_H(?P<h>\d+)_W(?P<w>\d+)_Cin(?P<ci>\d+)_Cout(?P<co>\d+)_stride(?P<s>\d+)(_dilation1)?")
_CONVNORM_RE = re.compile(r"ConvNorm_H(?P<h>\d+)_W(?P<w>\d+)_Cin(?P<ci>\d+)_Cout(?P<co>\d+)_kernel(?P<k>\d+)_stride(?P<s>\d+)")
_FF_RE = re.compile(r"ff_H(?P<h>\d+)_W(?P<w>\d+)_C(?P<c>\d+)")
_HEAD_RE = re.compile(r"head_H(?P<h>\d+)_W(?P<w>\d+)_Cin(?P<ci>\d+)_Cout(?P<co>\d+)")


def official_to_spec(name: str) -> OpSpec:
    """Our op spec for an official table entry name; errors name the entry."""
    m = _CONVNORM_RE.fullmatch(name)
    if m:
        h, w, ci, co, k, s = (int(m[g]) for g in ("h", "w", "ci", "co", "k", "s"))
        if k == 3 and s == 2:
            return OpSpec("stem_conv", h, w, ci, co, 2)
        if k == 1 and s == 1:
            return OpSpec("arm", h, w, ci, co, 1)
        if k == 3 and s == 1:
            return OpSpec("refine", h, w, ci, co, 1)
        raise LatencyTableError(f"official entry {name!r}: no ConvNorm of kernel {k}, stride {s} in the network")
    m = _FF_RE.fullmatch(name)
    if m:
        return OpSpec("ffm", int(m["h"]), int(m["w"]), int(m["c"]), int(m["c"]), 1)
    m = _HEAD_RE.fullmatch(name)
    if m:
        return OpSpec("head", int(m["h"]), int(m["w"]), int(m["ci"]), int(m["co"]), 1)
    m = _CELL_RE.fullmatch(name)
    if m and m["cls"] in _CELL_CLASSES:
        return OpSpec(_CELL_CLASSES[m["cls"]], int(m["h"]), int(m["w"]), int(m["ci"]), int(m["co"]), int(m["s"]))
    raise LatencyTableError(f"official entry {name!r}: not a name the official latency table uses")


def official_name(spec: OpSpec) -> str:
    """The official code's table name for an op spec (inverse of :func:`official_to_spec`)."""
    cells = {v: k for k, v in _CELL_CLASSES.items()}
    if spec.op in cells:
        name = f"{cells[spec.op]}_H{spec.h}_W{spec.w}_Cin{spec.c_in}_Cout{spec.c_out}_stride{spec.stride}"
        return name if spec.op == "skip" else name + "_dilation1"
    if spec.op in ("stem_conv", "arm", "refine"):
        k = 1 if spec.op == "arm" else 3
        return f"ConvNorm_H{spec.h}_W{spec.w}_Cin{spec.c_in}_Cout{spec.c_out}_kernel{k}_stride{spec.stride}"
    if spec.op == "ffm":
        return f"ff_H{spec.h}_W{spec.w}_C{spec.c_in}"
    return f"head_H{spec.h}_W{spec.w}_Cin{spec.c_in}_Cout{spec.c_out}"


def import_official(path: str | Path) -> LatencyTable:
    """Convert the official table (JSON ``{"source", "entries": {name: ms}}``) to ours."""
    from fasterseg.utils.io import read_json

    path = Path(path)
    data = read_json(path, LatencyTableError)
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise LatencyTableError(f"{path}: expected an object with a non-empty 'entries' object")
    meta = TableMeta(device="cuda: NVIDIA GeForce GTX 1080 Ti", backend="tensorrt", precision="fp32",
                     memory_format="contiguous", size=OFFICIAL_SIZE, batch=1, threads=None, clock="wall",
                     versions={"tensorrt": "5.1.5"}, date="",
                     source=f"official FasterSeg latency_lookup_table.npy ({data.get('source', path.name)})",
                     notes="arm/head entries exclude the bilinear resizes; stride-1 skip entries are the identity")
    table = LatencyTable(meta)
    for name, ms in entries.items():
        spec = official_to_spec(name)
        if spec in table:
            raise LatencyTableError(f"{path}: entries {name!r} and another map to the same op {spec.key}")
        try:
            table.set(spec, ms)
        except LatencyTableError as exc:
            raise LatencyTableError(f"{path}: {exc}") from None
    return table


def load_profile(name: str) -> LatencyTable:
    """A table shipped with the package, by profile name."""
    if name not in PROFILES:
        raise LatencyTableError(f"unknown latency profile {name!r}; known: {sorted(PROFILES)}")
    ref = resources.files("fasterseg.latency").joinpath("profiles", PROFILES[name])
    return LatencyTable.from_dict(json.loads(ref.read_text()), source=f"profile {name}")


def load_table(name_or_path: str | Path) -> LatencyTable:
    """A table from a file, or a shipped profile by name (e.g. ``official-1080ti-trt5``)."""
    if str(name_or_path) in PROFILES:
        return load_profile(str(name_or_path))
    return LatencyTable.load(name_or_path)


def official_search_latency(genotype, table: LatencyTable, size: tuple[int, int] = OFFICIAL_SIZE) -> float:
    """The latency the official code reports for a derived network (its ``forward_latency``).

    It is :func:`fasterseg.latency.model.network_latency` with one quirk of the official code
    reproduced: its ``BasicResidual_downup_2x`` looks itself up under the ``BasicResidual2x``
    name, so every ``conv_2x_downup`` is charged as a ``conv_2x`` of the same shape. With it the
    official table gives back the ``latency02``/``latency12`` stored in the released arch files.
    """
    from dataclasses import replace

    from fasterseg.latency.specs import network_specs

    specs = [replace(s, op="conv_2x") if s.op == "conv_2x_downup" else s for s in network_specs(genotype, size)]
    return sum(table.lookup(specs))
