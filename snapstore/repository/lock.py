"""Repository lock: ``flock`` on ``locks/repository.lock``.

Backups, exports and verifies take it shared: they only add content-named files,
so any number may run together.  ``prune`` and ``repair index`` take it
exclusive because they delete.  The kernel drops a flock when its process dies,
so a ``kill -9`` never leaves a stale lock behind (restic's and borg's lock
files need a staleness timeout for that).  flock is unreliable on some network
filesystems; the repository is meant for a local disk.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..atomic import FILE_MODE
from ..errors import LockFailed, UsageError

DEFAULT_LOCK_WAIT_S = 600.0


def lock_wait_from_env() -> float:
    """Seconds to wait for the lock: ``SNAPSTORE_LOCK_WAIT``, else 600."""
    raw = os.environ.get("SNAPSTORE_LOCK_WAIT")
    if raw is None:
        return DEFAULT_LOCK_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise UsageError(f"SNAPSTORE_LOCK_WAIT must be a number of seconds >= 0, not {raw!r}")
    return value


@contextmanager
def repository_lock(lock_path: Path, *, exclusive: bool, wait: float | None = None) -> Iterator[None]:
    wait = lock_wait_from_env() if wait is None else wait
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    kind = "exclusive" if exclusive else "shared"
                    raise LockFailed(
                        f"could not take the {kind} repository lock within {wait:g} s: "
                        "another snapstore process (a repair) is using it") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        yield
    finally:
        os.close(fd)
