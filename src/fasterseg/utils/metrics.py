"""Where a run's numbers go, for training and search alike.

The CSV files are the record: each row is appended whole and synced (``utils.io.append_csv_row``),
and a resumed run first drops the rows that an interrupted epoch had logged (:meth:`MetricsLog.keep`).
TensorBoard shows the same numbers when its package is installed; its events after the resumed
step are purged so curves do not fold back on themselves. The console lines stay with the loops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping

from fasterseg.utils.io import append_csv_row, keep_csv_rows
from fasterseg.utils.tensorboard import ScalarLog


class MetricsLog:
    """CSV logs under ``run_dir`` and their TensorBoard view in ``run_dir/tensorboard``.

    ``enabled=False`` (every process but the first of a distributed run) writes nothing.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, purge_step: int | None = None):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._scalars = ScalarLog(self.run_dir / "tensorboard", enabled, purge_step=purge_step)

    def row(self, csv_name: str, values: Mapping[str, object], step: int | None = None,
            tag: Callable[[str], str] = str, not_scalars: Iterable[str] = ("epoch",)) -> None:
        """Append ``values`` to ``run_dir/csv_name``; with ``step``, also its numbers as TensorBoard
        scalars named ``tag(column)`` (the columns in ``not_scalars`` are counters, not curves)."""
        if not self.enabled:
            return
        append_csv_row(self.run_dir / csv_name, dict(values))
        if step is not None:
            skip = set(not_scalars)
            self._scalars.add({tag(k): v for k, v in values.items() if k not in skip}, step)

    def keep(self, csv_name: str, keep: Callable[[dict], bool]) -> None:
        """Keep only the rows of ``run_dir/csv_name`` for which ``keep(row)`` holds (on resume)."""
        if self.enabled:
            keep_csv_rows(self.run_dir / csv_name, keep)

    def close(self) -> None:
        self._scalars.close()
