"""An optimiser's state dict split into named tensors and plain JSON, so checkpoints are
safetensors + JSON instead of pickle (the search's checkpoints, training's compact ones)."""

from __future__ import annotations

from typing import Any

import torch


def flatten_optimizer(prefix: str, state_dict: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Put ``state_dict``'s tensors into ``tensors`` as ``PREFIX.INDEX.KEY``; return the rest
    (parameter groups and plain values) as JSON-ready data."""
    plain: dict[str, dict[str, Any]] = {}
    for idx, state in state_dict["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(idx), {})[key] = value
    return {"param_groups": state_dict["param_groups"], "state": plain}


def unflatten_optimizer(prefix: str, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The state dict :func:`flatten_optimizer` split (``torch.optim``'s ``load_state_dict`` casts
    floating tensors back to each parameter's dtype)."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta["state"].items():
        state.setdefault(int(idx), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}
