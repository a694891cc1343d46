"""An exponential moving average of a model's weights, trained beside it and scored beside it.

On CamVid's held-out sequence the score of the raw weights moves by 2-4 mIoU from one
validation to the next while the training loss keeps falling (docs/benchmarks.md, issue 31):
the last epoch is a draw from that spread. The average of the recent steps' weights is the
usual cure (Polyak averaging; timm's ``ModelEmaV2``, YOLO's EMA): it costs one pass over the
weights per step and is a model of the same architecture, saved and shipped like any other.

Every floating entry of the state dict is averaged, BatchNorm's running statistics included
(they follow the weights they normalise); integer entries (``num_batches_tracked``) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """``shadow = decay * shadow + (1 - decay) * weights`` after every optimiser step.

    With ``decay`` d the average spans about 1 / (1 - d) steps: 0.999 is about 20 CamVid epochs
    of 46 steps. It starts as a copy of the model (a run resumed with it switched on starts it at
    the weights of that moment)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # (shadow's, model's), found once

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        if self._pairs is None:  # state-dict tensors are updated in place, so the pairing holds for the run
            weights = model.state_dict()
            self._pairs = [(mine, weights[key].detach()) for key, mine in self.shadow.state_dict().items()]
        floats = [(mine, theirs) for mine, theirs in self._pairs if mine.is_floating_point()]
        torch._foreach_lerp_([m for m, _ in floats], [t for _, t in floats], 1.0 - self.decay)
        for mine, theirs in self._pairs:
            if not mine.is_floating_point():
                mine.copy_(theirs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state)
