"""File writing that never leaves a half-written output behind."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~umask())  # mkstemp's 0600 would make every output private
        _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent)  # the rename itself reaches the disk
    except OSError as exc:  # a full disk while writing the temporary file: name the output, not the temporary
        if exc.filename in (None, str(tmp_path)) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    write_point(path)


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write a matplotlib figure whole (temporary name, then rename) in the format its suffix
    names (PNG without one), and close it so that long runs drawing every epoch do not pile up
    figures; returns the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    return path


def write_point(path: Path) -> None:
    """Called each time a file is complete on disk (after its rename, or after a log row is
    appended). It does nothing: fault-injection tests replace it in a child process to stop that
    process between any two files a run writes (tests/test_fault_matrix.py)."""


def append_csv_row(path: Path, row: dict) -> None:
    """Append ``row`` to the CSV log at ``path`` (with a header line when the file is new).

    Values go under the file's own header, blank where the row lacks a column; a row with a
    column the file lacks (a run resumed by a newer version that logs more) first widens the
    file: rewritten whole under the wider header, the old rows blank in the new column."""
    import csv

    columns = list(row)
    if path.exists():
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if header:
            added = [c for c in columns if c not in header]
            if added:
                with open(path, newline="") as f:
                    rows = list(csv.DictReader(f))
                with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=header + added, restval="")
                    writer.writeheader()
                    writer.writerows(rows)
            columns = header + added
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())
    write_point(path)


def umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: Path, error: type[Exception]) -> Any:
    """The parsed JSON at ``path``; unreadable or invalid files raise ``error`` naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc})") from None


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links and relative parts), existing or not."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def refuse_overwriting_inputs(outputs, inputs, error: type[Exception], flag: str = "") -> None:
    """Raise ``error`` naming the first output that is one of the inputs: writing it would
    destroy what the command reads. Checked before any work is done."""
    inputs = [Path(p) for p in inputs if p is not None]
    for out in outputs:
        for source in inputs:
            if same_file(out, source):
                hint = f" (choose another {flag})" if flag else ""
                raise error(f"{out}: is also an input of this command; writing it would destroy that input{hint}")


def check_writable(path: Path, error: type[Exception], is_dir: bool = False) -> None:
    """Raise ``error`` naming ``path`` when the output could not be written there, before the work
    that would produce it: a folder is made (or must be writable); a file's folder likewise."""
    folder = Path(path) if is_dir else Path(path).parent
    if is_dir and folder.exists() and not folder.is_dir():
        raise error(f"{path}: is a file, expected a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"{path}: cannot create {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise error(f"{path}: {folder} is not writable")
    if not is_dir and Path(path).is_dir():
        raise error(f"{path}: is a folder, expected a file name")


def keep_csv_rows(path: Path, keep) -> None:
    """Rewrite the CSV at ``path`` (atomically, if anything goes) with its header and the rows for
    which ``keep(row as a dict)`` is true: how a resumed run drops what an interrupted epoch logged."""
    import csv
    import io

    path = Path(path)
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and keep(dict(zip(rows[0], r)))]
    if len(kept) != len(rows):
        buffer = io.StringIO()
        csv.writer(buffer).writerows(kept)  # the line ending every writer of these logs uses
        atomic_write_text(path, buffer.getvalue())
