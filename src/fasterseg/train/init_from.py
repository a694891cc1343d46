"""Start training from a trained model file (fine-tuning), mapping its classes by name.

Every tensor of the same name and shape is copied. The classifiers (the 1x1 convolutions that
end each head) have one row per class: the rows of classes both models name are copied by name
(so "car" stays "car" whatever its index), the others keep their fresh initialisation. Tensors
the source lacks (e.g. auxiliary heads dropped from a shipped model) stay fresh too. Anything
else that differs in shape means another architecture, which is an error naming the tensors.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fasterseg.errors import InitError


def is_classifier(name: str, model: nn.Module | None = None) -> bool:
    """A tensor with one row per class: a registered network names its own (``classifier_prefixes``),
    a FasterSeg network's are its heads' last 1x1 convolutions."""
    prefixes = getattr(model, "classifier_prefixes", None)
    if prefixes is not None:
        return name.startswith(tuple(prefixes))
    return name.startswith("heads") and ".conv_1x1." in name


def initialise_from(model: nn.Module, path: str | Path, class_names: tuple[str, ...]) -> dict:
    """Copy ``path``'s weights into ``model`` (see the module docstring); returns the provenance
    to record: source, classes kept and new, tensors left fresh."""
    from fasterseg.modelfile import read_model_file

    if str(path).lower().endswith(".json"):
        raise InitError(f"{path}: --init takes a trained model file (weights); a genotype JSON goes in --genotype")
    state, meta = read_model_file(path)
    broken = [name for name, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:
        raise InitError(f"{path}: {len(broken)} tensor(s) hold NaN or infinite values ({', '.join(broken[:3])}); "
                        "it cannot start a run")
    source_classes = tuple(meta.class_names)
    row_of = {name: i for i, name in enumerate(source_classes)}
    kept = [name for name in class_names if name in row_of]
    target = model.state_dict()
    copied, fresh, wrong = 0, [], []
    with torch.no_grad():
        for name, tensor in target.items():
            if name not in state:
                fresh.append(name)
                continue
            value = state[name].to(tensor.dtype)
            if is_classifier(name, model):
                if value.shape[1:] != tensor.shape[1:] or value.shape[0] != len(source_classes):
                    wrong.append(f"{name} {tuple(value.shape)} != {tuple(tensor.shape)}")
                    continue
                for row, class_name in enumerate(class_names):
                    if class_name in row_of:
                        tensor[row].copy_(value[row_of[class_name]])
                copied += 1
            elif value.shape == tensor.shape:
                tensor.copy_(value)
                copied += 1
            else:
                wrong.append(f"{name} {tuple(value.shape)} != {tuple(tensor.shape)}")
    if wrong:
        raise InitError(f"{path}: another architecture than the one being trained: " + ", ".join(wrong[:6])
                        + (f" and {len(wrong) - 6} more" if len(wrong) > 6 else ""))
    if not kept:
        raise InitError(f"{path}: shares no class name with the data ({', '.join(source_classes[:5])}... vs "
                        f"{', '.join(class_names[:5])}...); nothing of its classifiers would carry over")
    unused = sorted(set(state) - set(target))
    return {"init_from": str(path), "classes_kept": kept, "classes_new": [c for c in class_names if c not in row_of],
            "tensors_copied": copied, "tensors_fresh": fresh, "tensors_unused": unused}


def freeze(model: nn.Module, prefixes: list[str]) -> list[str]:
    """Stop training the parameters under each prefix (``stem``, ``cells.0-0``...), batch-norm
    statistics included; returns the frozen parameter names. An unknown prefix is an error."""
    names = [n for n, _ in model.named_parameters()]
    frozen: list[str] = []
    for prefix in prefixes:
        matched = [n for n in names if n == prefix or n.startswith(prefix + ".")]
        if not matched:
            raise InitError(f"freeze: no parameters under {prefix!r}; {_modules_near(names, prefix)}")
        frozen += matched
    for name, param in model.named_parameters():
        if name in frozen:
            param.requires_grad_(False)
    return frozen


def _modules_near(names: list[str], prefix: str) -> str:
    """The module names one level below the longest part of ``prefix`` that exists (``cells.0_0``
    -> the cells ``cells.0-0, cells.1-0, ...``), or the top-level ones."""
    parts = prefix.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:depth])
        below = sorted({".".join(n.split(".")[:depth + 1]) for n in names if n.startswith(parent + ".")})
        if below:
            return f"modules under {parent!r}: {', '.join(below)}"
    return "top-level modules: " + ", ".join(sorted({n.split(".")[0] for n in names}))


def frozen_batchnorms(model: nn.Module, prefixes: list[str]) -> list[nn.Module]:
    """The batch norms under the frozen prefixes, to be kept in eval mode while training."""
    return [m for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and any(name == p or name.startswith(p + ".") for p in prefixes)]
