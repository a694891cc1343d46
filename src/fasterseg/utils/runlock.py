"""One process at a time in a run folder: two runs started with the same name would interleave
their logs and overwrite each other's models and checkpoints."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fasterseg.errors import RunInUseError

LOCK_NAME = ".lock"


@contextmanager
def run_lock(run_dir: Path, enabled: bool = True) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``run_dir/.lock`` for the block (created if needed).

    The operating system drops the lock when its process ends, however it ends, so a killed run
    never leaves a stale lock behind; a second process asking while the first lives is refused
    at once, naming the holder's pid. Leftover ``.*.tmp`` files of interrupted atomic writes in the
    folder are removed once the lock is held. A folder made here that holds nothing but the lock when
    the block ends (a start that failed its checks) is removed again. ``enabled=False`` (non-main processes of a group) is a no-op.
    """
    if not enabled:
        yield
        return
    try:
        import fcntl
    except ImportError:  # no POSIX locks here: run unguarded rather than not at all
        yield
        return
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunInUseError(f"{run_dir}: another run (pid {holder}) is writing here; wait for it or "
                                "choose another name") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        # Temporary files of an atomic write that a killed run never renamed: with the lock
        # held, nothing else can be writing them.
        for stale in run_dir.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)  # closing releases the lock
        if created and [p.name for p in run_dir.iterdir()] == [LOCK_NAME]:  # a start that failed before writing
            (run_dir / LOCK_NAME).unlink(missing_ok=True)
            run_dir.rmdir()
