"""Genotype: the declarative, versioned JSON description of a derived FasterSeg network.

A genotype says everything needed to build the network (and nothing about weights):
base channel count ``F``, the stem and head width multipliers, the number of classes and,
per branch, the scale it ends at, its operators, its down-sampling path and its widths.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fasterseg.errors import GenotypeError
from fasterseg.layers.names import OP_NAMES
from fasterseg.layers.rules import feature_channels

GENOTYPE_VERSION = 1
# How a network normalises its input beyond the dataset's fixed mean and std: "dataset" (nothing
# more, the paper) or "image" (each image's channels to zero mean and unit spread over its pixels,
# which makes the network blind to exposure and contrast: the held-out CamVid sequence is brighter)
INPUT_NORMS = ("dataset", "image")
# The stride of a network's class scores: 8 (the paper: the 1/8 head) or 4 (the 1/8 scores refined at
# 1/4 with the stem's 1/4 features; at 360x480 a 1/8 output caps CamVid's mIoU by itself, issue 31)
OUTPUT_STRIDES = (8, 4)
# Output strides of the three branch ends (path value 0, 1, 2).
END_STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Branch:
    """One branch of the derived network.

    ``path[l]`` is the scale index (0: 1/8, 1: 1/16, 2: 1/32) of the input of cell ``l``;
    a cell whose successor has a larger index down-samples. ``widths[l]`` is the width
    multiplier of the output of cell ``l`` (the last cell's output width is the head width,
    so there is one width fewer than there are cells).
    """

    end: int
    ops: tuple[str, ...]
    path: tuple[int, ...]
    widths: tuple[float, ...]

    @property
    def downs(self) -> tuple[int, ...]:
        """1 where cell ``l`` halves the resolution, else 0 (the last cell never does)."""
        return tuple(
            int(self.path[i + 1] > self.path[i]) for i in range(len(self.path) - 1)
        ) + (0,)


@dataclass(frozen=True)
class Genotype:
    """A derived FasterSeg network. ``branches`` are ordered as the network fuses them."""

    branches: tuple[Branch, ...]
    num_classes: int = 19
    base_channels: int = 12
    stem_width: float = 1.0
    head_width: float = 1.0
    version: int = GENOTYPE_VERSION
    input_norm: str = "dataset"  # INPUT_NORMS; written to JSON only when not the paper's
    output_stride: int = 8  # OUTPUT_STRIDES; written to JSON only when not the paper's

    def __post_init__(self) -> None:
        validate(self)

    @property
    def ends(self) -> tuple[int, ...]:
        return tuple(b.end for b in self.branches)

    def num_filters(self, scale: int, width: float) -> int:
        """Channels of a feature map at output stride ``scale`` with width multiplier ``width``."""
        return feature_channels(scale, self.base_channels, width)

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.input_norm == "dataset" else {"input_norm": self.input_norm}
        if self.output_stride != 8:
            extra["output_stride"] = self.output_stride
        return {
            "version": self.version,
            "base_channels": self.base_channels,
            "stem_width": self.stem_width,
            "head_width": self.head_width,
            "num_classes": self.num_classes,
            "branches": [
                {
                    "end": b.end,
                    "ops": list(b.ops),
                    "path": list(b.path),
                    "widths": list(b.widths),
                }
                for b in self.branches
            ],
            **extra,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any, source: str = "genotype") -> "Genotype":
        return _from_dict(data, source)

    @classmethod
    def from_json(cls, text: str, source: str = "genotype") -> "Genotype":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenotypeError(f"{source}: not valid JSON ({exc})") from None
        return _from_dict(data, source)

    @classmethod
    def load(cls, path: str | Path) -> "Genotype":
        from fasterseg.utils.io import read_json

        return _from_dict(read_json(Path(path), GenotypeError), str(path))

    def save(self, path: str | Path) -> None:
        from fasterseg.utils.io import atomic_write_text

        atomic_write_text(Path(path), self.to_json() + "\n")


_TOP_KEYS = {"version", "base_channels", "stem_width", "head_width", "num_classes", "branches", "input_norm",
             "output_stride"}
_BRANCH_KEYS = {"end", "ops", "path", "widths"}


def _require(data: dict, key: str, where: str) -> Any:
    if key not in data:
        raise GenotypeError(f"{where}: missing field '{key}'")
    return data[key]


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenotypeError(f"{where}: expected an integer, got {value!r}")
    return value


def _as_float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GenotypeError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _as_list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise GenotypeError(f"{where}: expected a list, got {value!r}")
    return value


def _from_dict(data: Any, source: str) -> Genotype:
    if not isinstance(data, dict):
        raise GenotypeError(f"{source}: expected a JSON object at the top level")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise GenotypeError(f"{source}: unknown field(s) {sorted(unknown)}")
    version = _as_int(_require(data, "version", source), f"{source}: version")
    if version != GENOTYPE_VERSION:
        raise GenotypeError(
            f"{source}: version {version} is not supported (this fasterseg reads version {GENOTYPE_VERSION})"
        )
    branches = []
    for i, raw in enumerate(_as_list(_require(data, "branches", source), f"{source}: branches")):
        where = f"{source}: branches[{i}]"
        if not isinstance(raw, dict):
            raise GenotypeError(f"{where}: expected an object")
        unknown = set(raw) - _BRANCH_KEYS
        if unknown:
            raise GenotypeError(f"{where}: unknown field(s) {sorted(unknown)}")
        ops = _as_list(_require(raw, "ops", where), f"{where}.ops")
        for j, op in enumerate(ops):
            if not isinstance(op, str):
                raise GenotypeError(f"{where}.ops[{j}]: expected an operator name, got {op!r}")
        branches.append(
            Branch(
                end=_as_int(_require(raw, "end", where), f"{where}.end"),
                ops=tuple(ops),
                path=tuple(
                    _as_int(v, f"{where}.path[{j}]")
                    for j, v in enumerate(_as_list(_require(raw, "path", where), f"{where}.path"))
                ),
                widths=tuple(
                    _as_float(v, f"{where}.widths[{j}]")
                    for j, v in enumerate(_as_list(_require(raw, "widths", where), f"{where}.widths"))
                ),
            )
        )
    try:
        return Genotype(
            branches=tuple(branches),
            num_classes=_as_int(_require(data, "num_classes", source), f"{source}: num_classes"),
            base_channels=_as_int(_require(data, "base_channels", source), f"{source}: base_channels"),
            stem_width=_as_float(_require(data, "stem_width", source), f"{source}: stem_width"),
            head_width=_as_float(_require(data, "head_width", source), f"{source}: head_width"),
            version=version,
            input_norm=data.get("input_norm", "dataset"),
            output_stride=_as_int(data.get("output_stride", 8), f"{source}: output_stride"),
        )
    except GenotypeError as exc:
        raise GenotypeError(f"{source}: {exc}") from None


def validate(g: Genotype) -> None:
    """Raise GenotypeError naming the first field that makes ``g`` unbuildable."""
    if g.num_classes < 1:
        raise GenotypeError(f"num_classes: must be >= 1, got {g.num_classes}")
    if g.base_channels < 1:
        raise GenotypeError(f"base_channels: must be >= 1, got {g.base_channels}")
    for name in ("stem_width", "head_width"):
        value = getattr(g, name)
        if not (math.isfinite(value) and value > 0):
            raise GenotypeError(f"{name}: must be a positive number, got {value}")
    if g.input_norm not in INPUT_NORMS:
        raise GenotypeError(f"input_norm: must be one of {list(INPUT_NORMS)}, got {g.input_norm!r}")
    if g.output_stride not in OUTPUT_STRIDES:
        raise GenotypeError(f"output_stride: must be one of {list(OUTPUT_STRIDES)}, got {g.output_stride!r}")
    if not g.branches:
        raise GenotypeError("branches: at least one branch is required")
    if len(g.branches) > 3:
        raise GenotypeError(f"branches: at most 3 branches (one per end scale), got {len(g.branches)}")
    ends = [b.end for b in g.branches]
    if len(set(ends)) != len(ends):
        raise GenotypeError(f"branches: each end scale may appear once, got ends {ends}")
    for i, b in enumerate(g.branches):
        where = f"branches[{i}]"
        if b.end not in (0, 1, 2):
            raise GenotypeError(f"{where}.end: must be 0 (1/8), 1 (1/16) or 2 (1/32), got {b.end}")
        if len(b.ops) < 1:
            raise GenotypeError(f"{where}.ops: at least one cell is required")
        for j, op in enumerate(b.ops):
            if op not in OP_NAMES:
                raise GenotypeError(f"{where}.ops[{j}]: unknown operator {op!r}; known: {list(OP_NAMES)}")
        if len(b.path) != len(b.ops):
            raise GenotypeError(
                f"{where}.path: needs one entry per cell ({len(b.ops)}), got {len(b.path)}"
            )
        if len(b.widths) != len(b.ops) - 1:
            raise GenotypeError(
                f"{where}.widths: needs one entry per cell but the last ({len(b.ops) - 1}), got {len(b.widths)}"
            )
        if b.path[0] != 0:
            raise GenotypeError(f"{where}.path[0]: every branch starts at scale 0 (1/8), got {b.path[0]}")
        for j in range(1, len(b.path)):
            step = b.path[j] - b.path[j - 1]
            if step not in (0, 1):
                raise GenotypeError(
                    f"{where}.path[{j}]: a path may stay or go down one scale per cell, got {b.path[j - 1]} -> {b.path[j]}"
                )
        if b.path[-1] != b.end:
            raise GenotypeError(f"{where}.path: ends at scale {b.path[-1]} but end is {b.end}")
        for j, w in enumerate(b.widths):
            if not (math.isfinite(w) and w > 0):
                raise GenotypeError(f"{where}.widths[{j}]: must be a positive number, got {w}")
