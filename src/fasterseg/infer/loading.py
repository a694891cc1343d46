"""A network to run from a model file, or from a genotype with random weights (for timing)."""

from __future__ import annotations

from pathlib import Path

import torch

from fasterseg.nets.network import FasterSegNet


def load_model_or_genotype(source: str | Path, device: str = "cpu", seed: int = 0) -> FasterSegNet:
    """A model file is loaded as is; a genotype ``.json`` gets freshly initialised weights
    (latency does not depend on the weight values), without the auxiliary heads."""
    from fasterseg.genotype import Genotype
    from fasterseg.modelfile import load_model
    from fasterseg.nets.network import init_weights

    path = Path(source)
    if path.suffix.lower() == ".json":
        torch.manual_seed(seed)
        model = FasterSegNet(Genotype.load(path), aux_heads=False)
        init_weights(model)
        return model.to(device).eval()
    return load_model(path, device=device)
