"""Per-image input standardisation (a genotype's ``input_norm: image``).

Each image's channels are moved to zero mean and unit spread over its own pixels before the
stem. Training then sees every frame at one exposure and contrast, and so does deployment: a
scene filmed brighter or flatter than the training frames (the held-out CamVid sequence is) reaches
the network as the training frames did. Any per-channel affine change of the input (the dataset
normalisation included) cancels out, so the network is invariant to it by construction (on the
input as the network runs it, padded to its stride: the padding's zeros count, the same on every
path). The cost is two reductions over the input, a small fraction of the stem.
"""

from __future__ import annotations

import torch

EPS = 1e-5  # keeps a constant channel finite (it becomes 0)


def standardise_per_image(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> each image's channels at zero mean and unit standard deviation over H, W,
    computed in float32 at least (two plain reductions, so every exporter and runtime has them)."""
    dtype = x.dtype
    x = x.float() if dtype in (torch.float16, torch.bfloat16) else x
    mean = x.mean(dim=(2, 3), keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dim=(2, 3), keepdim=True)
    return (centred * torch.rsqrt(var + EPS)).to(dtype)
