"""Our model file: safetensors weights with the network and metadata in the header.

Everything needed to rebuild and use the network travels in the file (which network: a
FasterSeg genotype or a registered network's name; class names, normalisation, training
resolution), so ``load_model(path)`` needs no side knowledge, and nothing in it is a pickle.
Files written before networks were registered have no ``network`` field: they are FasterSeg.

Weights are stored in float32, float16 or, for shipping wider networks under a size limit, with
their convolution and linear weights in int8 (one float32 scale per output channel: symmetric,
round to nearest; format version 2, which lists them in the header). Loading gives float32 either
way; batch-norm parameters and biases are never quantised.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn
from safetensors.torch import load_file, save_file

from fasterseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fasterseg.errors import FasterSegError, ModelFileError
from fasterseg.genotype import Genotype
from fasterseg.nets.network import FasterSegNet
from fasterseg.nets.registry import GENOTYPE_NETWORK, build_network, entry
from fasterseg.utils.io import atomic_path

FORMAT_NAME = "fasterseg-model"
FORMAT_VERSION = 1  # what a file without int8 weights is written as
INT8_FORMAT_VERSION = 2  # a file with int8 weights (its header lists them under "int8_weights")
SUPPORTED_VERSIONS = (FORMAT_VERSION, INT8_FORMAT_VERSION)
INT8_SCALE_SUFFIX = "@int8_scale"  # tensor name of an int8 weight's per-output-channel scales
WEIGHT_DTYPES = ("fp32", "fp16", "int8")
_INT8_MIN_NUMEL = 256  # smaller weights gain nothing from quantising: they stay fp16


@dataclass
class ModelMeta:
    """What a model needs besides its weights. ``train_size`` is (height, width); ``genotype`` is
    the FasterSeg network's, None for a registered ``network``."""

    genotype: Genotype | None
    class_names: tuple[str, ...]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    train_size: tuple[int, int] | None = None
    aux_heads: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    network: str = GENOTYPE_NETWORK

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __post_init__(self) -> None:
        if self.network != GENOTYPE_NETWORK:
            try:
                self.network = entry(self.network).name
            except FasterSegError as exc:
                raise ModelFileError(str(exc)) from None
            if self.genotype is not None:
                raise ModelFileError(f"a {self.network} model has no genotype (only FasterSeg networks do)")
        elif self.genotype is None:
            raise ModelFileError("a FasterSeg model needs its genotype")
        elif len(self.class_names) != self.genotype.num_classes:
            raise ModelFileError(
                f"class_names has {len(self.class_names)} names but the genotype has {self.genotype.num_classes} classes"
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ModelFileError("mean and std need one value per RGB channel")

    def to_header(self) -> dict[str, str]:
        return {
            "format": FORMAT_NAME,
            "format_version": str(FORMAT_VERSION),
            "network": self.network,
            **({"genotype": json.dumps(self.genotype.to_dict())} if self.genotype is not None else {}),
            "class_names": json.dumps(list(self.class_names)),
            "mean": json.dumps(list(self.mean)),
            "std": json.dumps(list(self.std)),
            "train_size": json.dumps(list(self.train_size) if self.train_size else None),
            "aux_heads": json.dumps(self.aux_heads),
            "extra": json.dumps(self.extra),
        }

    @classmethod
    def from_header(cls, header: dict[str, str] | None, source: str) -> "ModelMeta":
        if not header or header.get("format") != FORMAT_NAME:
            raise ModelFileError(f"{source}: not a fasterseg model file (no '{FORMAT_NAME}' header)")
        version = header.get("format_version")
        if version not in {str(v) for v in SUPPORTED_VERSIONS}:
            raise ModelFileError(f"{source}: model format version {version} is not supported "
                                 f"(this fasterseg reads versions {', '.join(map(str, SUPPORTED_VERSIONS))})")

        def field_json(key: str, required: bool = True) -> Any:
            if key not in header:
                if required:
                    raise ModelFileError(f"{source}: header lacks '{key}'")
                return None
            try:
                return json.loads(header[key])
            except json.JSONDecodeError as exc:
                raise ModelFileError(f"{source}: header field '{key}' is not valid JSON ({exc})") from None

        network = header.get("network", GENOTYPE_NETWORK)
        genotype = None
        try:
            if network == GENOTYPE_NETWORK:
                genotype = Genotype.from_dict(field_json("genotype"), source=f"{source}: genotype")
            else:
                network = entry(network).name
        except FasterSegError as exc:
            raise ModelFileError(f"{source}: {exc}" if network != GENOTYPE_NETWORK else str(exc)) from None
        classes = genotype.num_classes if genotype is not None else None
        def numbers(key: str, count: int, positive: bool = False, integer: bool = False) -> tuple:
            value = field_json(key)
            ok = (isinstance(value, list) and len(value) == count
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
                  and (not positive or all(v > 0 for v in value)) and (not integer or all(float(v).is_integer() for v in value)))
            if not ok:
                kind = "positive " if positive else ""
                raise ModelFileError(f"{source}: header field '{key}' must be {count} {kind}{'integers' if integer else 'numbers'}, got {value!r}")
            return tuple(int(v) for v in value) if integer else tuple(float(v) for v in value)

        names = field_json("class_names")
        if (not (isinstance(names, list) and names and all(isinstance(n, str) for n in names))
                or (classes is not None and len(names) != classes)):
            which = f"the genotype's {classes}" if classes is not None else "the network's"
            raise ModelFileError(f"{source}: header field 'class_names' must list {which} class names, got {names!r:.120}")
        extra = field_json("extra", required=False) or {}
        if not isinstance(extra, dict):
            raise ModelFileError(f"{source}: header field 'extra' must be an object, got {extra!r:.80}")
        return cls(
            genotype=genotype,
            class_names=tuple(names),
            mean=numbers("mean", 3),
            std=numbers("std", 3, positive=True),
            train_size=numbers("train_size", 2, positive=True, integer=True) if header.get("train_size") not in (None, "null") else None,
            aux_heads=bool(field_json("aux_heads", required=False)),
            extra=extra,
            network=network,
        )


def save_model(path: str | Path, model: nn.Module, meta: ModelMeta, half: bool = False,
               include_aux: bool = True, weights: str | None = None) -> Path:
    """Write ``model``'s weights and ``meta`` atomically (temporary name, then rename).

    ``weights``: ``fp32``, ``fp16`` (half the size; loading casts back to fp32) or ``int8`` (a
    quarter of fp32 for convolution and linear weights, fp16 for the rest: see
    :func:`quantize_int8`); ``half=True`` is ``weights="fp16"``. ``include_aux=False`` leaves out
    the training-only auxiliary heads (for shipping).
    """
    weights = weights or ("fp16" if half else "fp32")
    if weights not in WEIGHT_DTYPES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_DTYPES)}, got {weights!r}")
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    aux = model.aux_heads and include_aux
    if not aux:
        state = {k: v for k, v in state.items() if not k.startswith(tuple(model.aux_prefixes))}
    quantized: list[str] = []
    if weights == "int8":
        state, quantized = quantize_int8(state)
    if weights in ("fp16", "int8"):
        state = {k: v.half() if v.is_floating_point() and not k.endswith(INT8_SCALE_SUFFIX) else v
                 for k, v in state.items()}
    meta = ModelMeta(**{**meta.__dict__, "aux_heads": aux})
    header = meta.to_header()
    if quantized:
        header["format_version"] = str(INT8_FORMAT_VERSION)
        header["int8_weights"] = json.dumps(quantized)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=header)
    return path


def quantize_int8(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Convolution and linear weights (2-D and more, at least 256 values) as int8 with one float32
    scale per output channel (``max |w| / 127`` of that channel, so its largest weight is exact to
    the scale's rounding and every weight is within half a step); the other tensors unchanged.
    Returns the new state and the quantised names."""
    out: dict[str, torch.Tensor] = {}
    names = []
    for key, value in state.items():
        if value.is_floating_point() and value.dim() >= 2 and value.numel() >= _INT8_MIN_NUMEL:
            flat = value.float().reshape(value.shape[0], -1)
            scale = flat.abs().amax(dim=1) / 127.0
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero channel stays zero
            out[key] = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8).reshape(value.shape)
            out[key + INT8_SCALE_SUFFIX] = scale.contiguous()
            names.append(key)
        else:
            out[key] = value
    return out, names


def _dequantize_int8(state: dict[str, torch.Tensor], names: Any, source: str) -> dict[str, torch.Tensor]:
    """The float32 weights of a version-2 file's int8 tensors, each checked against its scales."""
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise ModelFileError(f"{source}: header field 'int8_weights' must list tensor names, got {names!r:.80}")
    state = dict(state)
    for name in names:
        q, scale = state.get(name), state.pop(name + INT8_SCALE_SUFFIX, None)
        if q is None or scale is None:
            raise ModelFileError(f"{source}: int8 weight {name!r} " + ("is missing" if q is None else "has no scales"))
        if q.dtype != torch.int8 or scale.dim() != 1 or q.dim() < 2 or scale.shape[0] != q.shape[0]:
            raise ModelFileError(f"{source}: int8 weight {name!r} ({q.dtype}, {tuple(q.shape)}) does not match its "
                                 f"scales ({scale.dtype}, {tuple(scale.shape)})")
        state[name] = q.float() * scale.float().view(-1, *([1] * (q.dim() - 1)))
    stray = sorted(k for k in state if k.endswith(INT8_SCALE_SUFFIX))
    if stray:
        raise ModelFileError(f"{source}: scales without an int8 weight listed in the header: {stray[:4]}")
    return state


def _open_header(path: Path) -> dict[str, str] | None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def read_model_file(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelMeta]:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        header = _open_header(path)
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a safetensors file ({exc})") from None
    meta = ModelMeta.from_header(header, str(path))
    if "int8_weights" in header:
        try:
            names = json.loads(header["int8_weights"])
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{path}: header field 'int8_weights' is not valid JSON ({exc})") from None
        state = _dequantize_int8(state, names, str(path))
    return state, meta


def read_model_meta(path: str | Path) -> ModelMeta:
    """A model file's header alone (no tensor is read)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        header = _open_header(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a safetensors file ({exc})") from None
    return ModelMeta.from_header(header, str(path))


def _is_json(path: Path) -> bool:
    return path.suffix.lower() == ".json"


def load_genotype_and_meta(source: str | Path) -> tuple[Genotype, ModelMeta | None]:
    """The genotype of a genotype JSON, a search result JSON (``{"genotype": ...}``) or a model
    file, with the model file's metadata (None for JSON). The one way every command reads a
    network description."""
    from fasterseg.errors import GenotypeError
    from fasterseg.utils.io import read_json

    path = Path(source)
    if _is_json(path):
        data = read_json(path, GenotypeError)
        if isinstance(data, dict) and "genotype" in data and "branches" not in data:
            data = data["genotype"]
        return Genotype.from_dict(data, source=str(path)), None
    meta = read_model_meta(path)
    if meta.genotype is None:
        raise ModelFileError(f"{path}: a {meta.network} model, which has no genotype (only FasterSeg networks do)")
    return meta.genotype, meta


def load_genotype(source: str | Path) -> Genotype:
    """The genotype of a genotype JSON, a search result JSON or a model file."""
    return load_genotype_and_meta(source)[0]


def network_for(meta: ModelMeta) -> nn.Module:
    """A freshly built network of the kind ``meta`` describes (on the current default device)."""
    if meta.genotype is not None:
        return FasterSegNet(meta.genotype, aux_heads=meta.aux_heads)
    return build_network(meta.network, meta.num_classes, aux_heads=meta.aux_heads)


def build_from_state(state: dict[str, torch.Tensor], meta: ModelMeta, source: str) -> nn.Module:
    """The network ``meta`` describes holding ``state``. The network's shapes are compared with
    the file's on the meta device first, so a header describing a huge network is refused before
    any of it is allocated: real memory is only taken for a network the file's tensors fill."""
    with torch.device("meta"):
        skeleton = network_for(meta)
    expected = skeleton.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"missing {missing[:8]}")
        if unexpected:
            detail.append(f"unexpected {unexpected[:8]}")
        if wrong:
            detail.append("mis-shaped " + ", ".join(f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}" for k in wrong[:8]))
        what = "the genotype" if meta.genotype is not None else f"the {meta.network} network"
        raise ModelFileError(f"{source}: weights do not match {what}: " + "; ".join(detail))
    model = network_for(meta)
    model.load_state_dict(state)
    model.meta = meta
    return model


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A ready network in eval mode; its :class:`ModelMeta` is at ``model.meta``."""
    state, meta = read_model_file(path)
    model = build_from_state(state, meta, str(path))
    return model.to(device).eval()


def convert_model_file(src: str | Path, dst: str | Path, half: bool = True, include_aux: bool = False,
                       extra: dict[str, Any] | None = None, weights: str | None = None) -> Path:
    """A copy of a model file for shipping: fp16 weights (or ``weights``: fp32 / fp16 / int8), no
    auxiliary heads, extra metadata merged in."""
    model = load_model(src)
    meta = model.meta
    if extra:
        meta = ModelMeta(**{**meta.__dict__, "extra": {**meta.extra, **extra}})
    return save_model(dst, model, meta, half=half, include_aux=include_aux, weights=weights)


def load_network(source: str | Path, device: str | torch.device = "cpu", seed: int = 0) -> nn.Module:
    """A network to run: a model file as it is, or a genotype JSON or a registered network's name
    (``ddrnet23_slim``, 19 classes; ``ddrnet23_slim:11`` for 11) with freshly initialised weights
    (seeded) and no auxiliary heads, for timing (latency does not depend on the values)."""
    from fasterseg.nets.network import init_weights
    from fasterseg.nets.registry import ALIASES, REGISTRY

    path = Path(source)
    name, _, classes = str(source).partition(":")
    if not path.exists() and ALIASES.get(name, name) in REGISTRY:
        if classes and not (classes.isdigit() and int(classes) > 0):
            raise ModelFileError(f"{source}: the class count after ':' must be a positive integer")
        torch.manual_seed(seed)
        return build_network(name, int(classes or 19), aux_heads=False).to(device).eval()
    if _is_json(path):
        torch.manual_seed(seed)
        model = FasterSegNet(load_genotype(path), aux_heads=False)
        init_weights(model)
        return model.to(device).eval()
    return load_model(path, device=device)
