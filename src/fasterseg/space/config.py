"""The search space, described once: the supernet's sizes and the architectures searched in it.

The supernet (:mod:`fasterseg.space.supernet`), the latency tables (``lut build``, the search's
differentiable latency) and the demo all read this one description; a search config's
``supernet`` section is one, so a search config is also a valid ``lut build --space``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fasterseg.errors import ConfigError
from fasterseg.layers.rules import feature_channels, reduction_fits, width_channels


@dataclass(frozen=True)
class ArchSpec:
    """One architecture searched over the shared weights.

    ``search_width``: widths come from its own Gumbel-sampled width logits (else every cell is
    at full width and its width logits have one column). ``ignore_skip``: derivation never
    keeps a skip (the paper's teacher).
    """

    name: str
    stem_width: float = 1.0
    head_width: float = 1.0
    search_width: bool = False
    ignore_skip: bool = False


def _paper_archs() -> list[ArchSpec]:
    return [
        ArchSpec("teacher", 1.0, 1.0, search_width=False, ignore_skip=True),
        ArchSpec("student", 8 / 12, 8 / 12, search_width=True, ignore_skip=False),
    ]


@dataclass
class SupernetConfig:
    """Sizes of the supernet; defaults are the paper's (METHOD.md)."""

    layers: int = 16  # cells per scale (the paper: 16)
    base_channels: int = 12  # F: a feature at stride s has s * F channels at full width
    width_choices: list[float] = field(default_factory=lambda: [4 / 12, 6 / 12, 8 / 12, 10 / 12, 1.0])  # searched width multipliers
    num_classes: int = 19  # classes of the dataset searched on
    archs: list[ArchSpec] = field(default_factory=_paper_archs)  # architectures searched over the shared weights (teacher, student)

    def __post_init__(self) -> None:
        if self.layers < 3:
            raise ConfigError(f"layers: the supernet needs at least 3 layers, got {self.layers}")
        if self.base_channels < 1:
            raise ConfigError(f"base_channels: must be >= 1, got {self.base_channels}")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes: must be >= 1, got {self.num_classes}")
        w = [float(v) for v in self.width_choices]
        if not w or any(not (0 < v <= 1) for v in w) or any(a >= b for a, b in zip(w, w[1:])) or w[-1] != 1.0:
            raise ConfigError(f"width_choices: must increase strictly within (0, 1] and end at 1.0, got {w}")
        self.width_choices = w
        for scale in (8, 16):
            down = width_channels(2 * scale * self.base_channels, w)
            if not all(reduction_fits(c) for c in down):
                raise ConfigError(
                    f"width_choices: the stride-2 skip needs an even channel count at every width; with "
                    f"base_channels={self.base_channels} the 1/{2 * scale} widths are {down}"
                )
        if not self.archs:
            raise ConfigError("archs: at least one architecture is required")
        names = [a.name for a in self.archs]
        if len(set(names)) != len(names):
            raise ConfigError(f"archs: names must be unique, got {names}")
        for i, a in enumerate(self.archs):
            if not (0 < a.stem_width <= 1):
                raise ConfigError(f"archs[{i}].stem_width: must be within (0, 1], got {a.stem_width}")
            if not any(math.isclose(a.head_width, v, rel_tol=0, abs_tol=1e-9) for v in w):
                raise ConfigError(f"archs[{i}].head_width: must be one of width_choices {w}, got {a.head_width}")

    def arch(self, name: str) -> ArchSpec:
        for a in self.archs:
            if a.name == name:
                return a
        raise KeyError(f"no architecture {name!r}; known: {[a.name for a in self.archs]}")

    def num_filters(self, scale: int, width: float = 1.0) -> int:
        return feature_channels(scale, self.base_channels, width)

    def stem_head_widths(self) -> list[tuple[float, float]]:
        """(stem width, head width) of each architecture: what a latency table must cover."""
        return [(a.stem_width, a.head_width) for a in self.archs]
