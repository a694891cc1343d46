"""Latency lookup tables: what an op instance costs on one device, keyed by one canonical name.

An *op instance* is an :class:`OpSpec`: the piece's type, its input height and width, input and
output channels and stride. :func:`spec_key` is the only place a key is spelled, so the table
builder, the network predictor and the differentiable search all name a measurement the same way.

Piece types are the five cell operators of :mod:`fasterseg.layers.ops` plus the pieces around
the cells, each meaning exactly what :class:`fasterseg.nets.network.FasterSegNet` runs:

``stem_conv``  3x3 conv-BN-ReLU, stride 2 (first stem layer; the other two are ``conv_2x``)
``arm``        1x1 conv-BN-ReLU followed by the bilinear x2 resize to the finer scale
``refine``     3x3 conv-BN-ReLU over the concatenated features (``c_in`` is the sum)
``ffm``        1x1 conv-BN-ReLU over the concatenated 1/8 features of all branches
``head``       the 1/8 head (3x3 conv-BN-ReLU, 1x1 classifier; ``c_out`` = classes) followed by
               the bilinear x8 resize of the logits to the input size

A table file is JSON: ``{"format": ..., "meta": {...}, "entries": {key: milliseconds}}``, sorted,
one entry a line, so people can read and diff it and two tables of the same setting can merge.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from fasterseg.backends import canonical
from fasterseg.errors import LatencyTableError
from fasterseg.layers.ops import OP_NAMES
from fasterseg.utils.io import atomic_write_text

TABLE_FORMAT = "fasterseg-latency-table/1"
PIECES: tuple[str, ...] = ("stem_conv", "arm", "refine", "ffm", "head")
OP_TYPES: tuple[str, ...] = OP_NAMES + PIECES


@dataclass(frozen=True, order=True)
class OpSpec:
    """One op instance: what it is, the input size it sees, channels in and out, stride."""

    op: str
    h: int
    w: int
    c_in: int
    c_out: int
    stride: int = 1

    def __post_init__(self) -> None:
        if self.op not in OP_TYPES:
            raise LatencyTableError(f"unknown op type {self.op!r}; known: {list(OP_TYPES)}")
        for name in ("h", "w", "c_in", "c_out"):
            if getattr(self, name) < 1:
                raise LatencyTableError(f"op spec {self.op}: {name} must be >= 1, got {getattr(self, name)}")
        if self.stride not in (1, 2):
            raise LatencyTableError(f"op spec {self.op}: stride must be 1 or 2, got {self.stride}")

    @property
    def key(self) -> str:
        return spec_key(self)


def spec_key(spec: OpSpec) -> str:
    """The canonical table key of an op instance (the one function that spells keys)."""
    return f"{spec.op}_H{spec.h}_W{spec.w}_Cin{spec.c_in}_Cout{spec.c_out}_s{spec.stride}"


_KEY_RE = re.compile(r"(?P<op>[a-z0-9_]+?)_H(?P<h>\d+)_W(?P<w>\d+)_Cin(?P<c_in>\d+)_Cout(?P<c_out>\d+)_s(?P<stride>\d+)")


def parse_key(key: str) -> OpSpec:
    """Inverse of :func:`spec_key`; errors name the key."""
    m = _KEY_RE.fullmatch(key)
    if not m:
        raise LatencyTableError(f"not a latency table key: {key!r} (expected e.g. 'conv_H64_W128_Cin32_Cout48_s1')")
    d = m.groupdict()
    return OpSpec(d["op"], int(d["h"]), int(d["w"]), int(d["c_in"]), int(d["c_out"]), int(d["stride"]))


@dataclass
class TableMeta:
    """Where and how a table was measured. ``size`` is the network input (H, W) it is for."""

    device: str = "unknown"
    backend: str = "unknown"
    precision: str = "fp32"
    memory_format: str = "contiguous"
    size: tuple[int, int] = (1024, 2048)
    batch: int = 1
    threads: int | None = None
    clock: str = "wall"
    versions: dict[str, str] = field(default_factory=dict)
    date: str = ""
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        self.backend = canonical(self.backend)  # tables of the name "torch" are the eager backend's

    def setting(self) -> tuple:
        """What must agree for two tables to be merged: the same device, backend and precision."""
        return (self.device, self.backend, self.precision, self.memory_format, tuple(self.size), self.batch, self.clock)


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


class LatencyTable:
    """Measured milliseconds per op instance, plus the metadata that says what they mean."""

    def __init__(self, meta: TableMeta | None = None, entries: Mapping[str, float] | None = None):
        self.meta = meta or TableMeta()
        self.entries: dict[str, float] = {}
        for key, value in (entries or {}).items():
            self.set(key, value)

    # -- entries -------------------------------------------------------------------------
    def set(self, key: str | OpSpec, ms: float) -> None:
        if isinstance(key, OpSpec):
            key = key.key
        else:
            parse_key(key)
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
            raise LatencyTableError(f"entry {key}: latency must be a finite number >= 0 ms, got {ms!r}")
        self.entries[key] = float(ms)

    def __contains__(self, spec: str | OpSpec) -> bool:
        return (spec.key if isinstance(spec, OpSpec) else spec) in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, spec: OpSpec) -> float:
        try:
            return self.entries[spec.key]
        except KeyError:
            raise MissingEntriesError([spec], self) from None

    def lookup(self, specs: Iterable[OpSpec]) -> list[float]:
        """Milliseconds of every spec; one error listing all the missing ones."""
        specs = list(specs)
        missing = [s for s in specs if s.key not in self.entries]
        if missing:
            raise MissingEntriesError(missing, self)
        return [self.entries[s.key] for s in specs]

    def missing(self, specs: Iterable[OpSpec]) -> list[OpSpec]:
        return sorted({s for s in specs if s.key not in self.entries})

    # -- merge ---------------------------------------------------------------------------
    def merge(self, other: "LatencyTable", force: bool = False) -> "LatencyTable":
        """Entries of both; where both have a key, ``other`` wins. Tables of different
        settings (device, backend, precision, memory format, size) refuse to merge unless forced."""
        if not force and self.meta.setting() != other.meta.setting():
            raise LatencyTableError(
                f"cannot merge tables of different settings: {self.meta.setting()} vs {other.meta.setting()} "
                "(device, backend, precision, memory format, size, batch, clock)"
            )
        merged = LatencyTable(TableMeta(**asdict(self.meta)), self.entries)
        merged.entries.update(other.entries)
        return merged

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        meta = asdict(self.meta)
        meta["size"] = list(self.meta.size)
        return {"format": TABLE_FORMAT, "meta": meta, "entries": dict(sorted(self.entries.items()))}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "table") -> "LatencyTable":
        if not isinstance(data, dict):
            raise LatencyTableError(f"{source}: expected a JSON object at the top level")
        if data.get("format") != TABLE_FORMAT:
            raise LatencyTableError(f"{source}: format is {data.get('format')!r}, expected {TABLE_FORMAT!r}")
        raw_meta = data.get("meta")
        if not isinstance(raw_meta, dict):
            raise LatencyTableError(f"{source}: missing object 'meta'")
        known = set(TableMeta.__dataclass_fields__)
        unknown = set(raw_meta) - known
        if unknown:
            raise LatencyTableError(f"{source}: meta has unknown field(s) {sorted(unknown)}")
        meta = TableMeta(**raw_meta)
        size = meta.size
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            raise LatencyTableError(f"{source}: meta.size must be [height, width], got {size!r}")
        meta.size = (int(size[0]), int(size[1]))
        entries = data.get("entries")
        if not isinstance(entries, dict):
            raise LatencyTableError(f"{source}: missing object 'entries'")
        table = cls(meta)
        for key, value in entries.items():
            try:
                table.set(key, value)
            except LatencyTableError as exc:
                raise LatencyTableError(f"{source}: {exc}") from None
        return table

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        from fasterseg.utils.io import read_json

        return cls.from_dict(read_json(Path(path), LatencyTableError), source=str(path))


class MissingEntriesError(LatencyTableError):
    """A prediction needs entries the table does not have; the message lists them."""

    def __init__(self, missing: list[OpSpec], table: LatencyTable):
        self.missing = sorted(set(missing))
        shown = ", ".join(s.key for s in self.missing[:12])
        more = f" and {len(self.missing) - 12} more" if len(self.missing) > 12 else ""
        where = f"{table.meta.device}/{table.meta.backend}/{table.meta.precision} at {table.meta.size[0]}x{table.meta.size[1]}"
        super().__init__(
            f"latency table ({where}) lacks {len(self.missing)} entr{'y' if len(self.missing) == 1 else 'ies'}: "
            f"{shown}{more}; measure them with `fasterseg lut build` (or pass a backend to measure on demand)"
        )
