"""Several named splits of one dataset read as one, each decoded once into the cache.

Training (``data.train_split: [train, val]``) and the search (``train_split``) both read their
data through :func:`read_splits`, so both get the decoded cache and multi-split reading alike.
"""

from __future__ import annotations

from typing import Callable

from fasterseg.data.base import ConcatDataset
from fasterseg.data.cache import cache_bytes, cached
from fasterseg.data.registry import build_dataset


def as_split_list(splits: str | list[str]) -> list[str]:
    """A config's split setting (one name or a list of names) as a list."""
    return [splits] if isinstance(splits, str) else list(splits)


def read_splits(spec: str, splits: list[str], cache_dir: str | None, show_progress: bool = True,
                max_cache_gb: float = float("inf"), note: Callable[[str], None] = print):
    """The named splits of ``spec`` read as one dataset, each decoded into ``cache_dir`` first
    (when given, the dataset lists its files and the decoded split fits ``max_cache_gb``)."""
    parts = []
    for split in splits:
        part = build_dataset(spec, split)
        if cache_dir is not None and hasattr(part, "pairs"):
            size = cache_bytes(part)
            if size > max_cache_gb * 1e9:
                note(f"data.cache: the {split} split decoded would take {size / 1e9:.3g} GB, more than "
                     f"{max_cache_gb:g} GB; reading its files instead")
            else:
                part = cached(part, cache_dir, show_progress)
        parts.append(part)
    return parts[0] if len(parts) == 1 else ConcatDataset(parts, source=f"{spec} {'+'.join(splits)}")
