"""Every network the trainer, model files and deploy paths take, by name.

``fasterseg`` is a network derived from a genotype (``--genotype G.json``, the searched ones);
the others are registered here, each one entry pointing (as ``"module:class"``, imported only
when built) at a class of the contract ``baselines.EighthScoresNet`` states. Registering a
network is one entry here; ``tests/nets/test_registered_networks.py`` then runs the contract
tests on it (forward, backward, ONNX export, BatchNorm folding, model-file round trip).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from fasterseg.errors import FasterSegError

GENOTYPE_NETWORK = "fasterseg"  # a FasterSeg network built from its genotype


@dataclass(frozen=True)
class NetworkEntry:
    name: str
    summary: str
    builder: str  # "module:class" called as (num_classes, aux_heads=...)


REGISTRY: dict[str, NetworkEntry] = {e.name: e for e in (
    NetworkEntry("bisenetv2", "BiSeNetV2 (Yu et al., IJCV 2021): detail and semantic branches, guided aggregation, "
                 "four booster heads in training", "fasterseg.nets.baselines:BiSeNetV2"),
    NetworkEntry("ddrnet23_slim", "DDRNet-23-slim (Hong et al., 2021): dual resolution at 1/8 and down to 1/64, "
                 "bilateral fusion, DAPPM; one auxiliary head in training", "fasterseg.nets.baselines:DDRNet23Slim"),
)}
ALIASES = {"ddrnet23slim": "ddrnet23_slim"}  # the name benchmarks/baselines used before it moved here


def network_names() -> list[str]:
    return [GENOTYPE_NETWORK, *REGISTRY]


def entry(name: str) -> NetworkEntry:
    name = ALIASES.get(name, name)
    if name not in REGISTRY:
        raise FasterSegError(f"unknown network {name!r}: registered ones are {', '.join(REGISTRY)} "
                             f"(a FasterSeg network is given by its genotype)")
    return REGISTRY[name]


def build_network(name: str, num_classes: int, aux_heads: bool = True):
    """A freshly initialised registered network (PyTorch's default initialisation, as its paper's code)."""
    module, _, attribute = entry(name).builder.partition(":")
    return getattr(importlib.import_module(module), attribute)(num_classes, aux_heads=aux_heads)
