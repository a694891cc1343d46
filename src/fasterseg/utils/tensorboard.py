"""TensorBoard scalars beside the CSV logs, when the optional ``tensorboard`` package is installed.

The CSV files are the record of a run; TensorBoard is a view of the same numbers, so a missing
package only means no view (``pip install "fasterseg[tensorboard]"`` adds it). On ``--resume``
the events after the resumed step are purged, so curves do not fold back on themselves.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class ScalarLog:
    """Writes ``tag -> value`` scalars at a step under ``log_dir``; a no-op when disabled or not installed."""

    def __init__(self, log_dir: str | Path, enabled: bool = True, purge_step: int | None = None):
        self._writer = None
        if enabled and tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    @property
    def active(self) -> bool:
        return self._writer is not None

    def add(self, values: Mapping[str, float | int | str | None], step: int) -> None:
        """Logs the numeric, finite values; empty cells of a CSV row ("" or None) are left out."""
        if self._writer is None:
            return
        for tag, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            self._writer.add_scalar(tag, value, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
