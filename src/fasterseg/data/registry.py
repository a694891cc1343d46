"""One spec string selects a dataset everywhere: ``kind:path`` (e.g. ``camvid:../shared/data/camvid``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from fasterseg.data.base import PairTransform
from fasterseg.errors import DatasetError

# One builder(root, split, transform) per kind, listed in BUILDERS below; a dataset's module is
# imported only when its kind is asked for.
def _camvid(root: Path, split: str, transform: PairTransform | None):
    from fasterseg.data.camvid import camvid

    return camvid(root, split, transform)


def _cityscapes(root: Path, split: str, transform: PairTransform | None):
    from fasterseg.data.cityscapes import cityscapes

    return cityscapes(root, split, transform)


def _synth(root: Path, split: str, transform: PairTransform | None):
    """What ``fasterseg data synth`` wrote: the Cityscapes layout, read by the Cityscapes reader."""
    from dataclasses import replace

    from fasterseg.data.cityscapes import CITYSCAPES_INFO, CityscapesDataset

    return CityscapesDataset(root, split, transform, info=replace(CITYSCAPES_INFO, name="synth"))


def _bdd100k(root: Path, split: str, transform: PairTransform | None):
    from fasterseg.data.bdd100k import bdd100k

    return bdd100k(root, split, transform)


def _folder(root: Path, split: str, transform: PairTransform | None):
    from fasterseg.data.folder import folder

    return folder(root, split, transform)


BUILDERS: dict[str, Callable] = {
    "camvid": _camvid,
    "cityscapes": _cityscapes,
    "synth": _synth,
    "bdd100k": _bdd100k,
    "folder": _folder,
}


def parse_spec(spec: str) -> tuple[str, Path]:
    kind, sep, path = spec.partition(":")
    if not sep or not path:
        raise DatasetError(f"dataset spec {spec!r} must look like KIND:PATH with KIND one of {sorted(BUILDERS)}")
    if kind not in BUILDERS:
        raise DatasetError(f"dataset spec {spec!r}: unknown kind '{kind}'; known: {sorted(BUILDERS)}")
    return kind, Path(path)


def build_dataset(spec: str, split: str, transform: PairTransform | None = None):
    kind, root = parse_spec(spec)
    if not root.exists():
        raise DatasetError(f"dataset spec {spec!r}: {root} does not exist")
    return BUILDERS[kind](root, split, transform)


def split_images(spec: str, split: str):
    """(DatasetInfo, image paths) of a split, without reading or requiring its labels: what int8
    calibration needs (a folder dataset's split may have images only)."""
    kind, root = parse_spec(spec)
    if not root.exists():
        raise DatasetError(f"dataset spec {spec!r}: {root} does not exist")
    if kind == "folder":
        from fasterseg.data.folder import folder_images

        return folder_images(root, split)
    dataset = build_dataset(spec, split)
    return dataset.info, [image for image, _ in dataset.pairs]
