"""fasterseg: FasterSeg search, training and deployment on today's PyTorch."""

from fasterseg.genotype import Branch, Genotype

__version__ = "0.1.0"

__all__ = ["Branch", "Genotype", "__version__", "load_model"]


def load_model(path, device="cpu"):
    """Load a fasterseg model file (safetensors + genotype header); returns it in eval mode."""
    from fasterseg.modelfile import load_model as _load

    return _load(path, device=device)
