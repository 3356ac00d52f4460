"""Repository lock: ``flock`` on ``locks/repository.lock``.

Backups, exports and verifies take it shared: they only add content-named files,
so any number may run together.  ``prune``, ``repair index`` and ``repair packs`` take it
exclusive because they delete.  The kernel drops a flock when its process dies,
so a ``kill -9`` never leaves a stale lock behind (restic's and borg's lock
files need a staleness timeout for that).  flock is unreliable on some network
filesystems; the repository is meant for a local disk.

Whoever takes the lock writes who it is (pid, host, command, mode) into the lock
file; it is only a hint for a process that has to wait, which says once on
stderr whom it waits for instead of hanging silently for up to 600 s.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..atomic import FILE_MODE
from ..errors import LockFailed, UsageError

DEFAULT_LOCK_WAIT_S = 600.0
ANNOUNCE_AFTER_S = 1.0  # a lock busy for less (two commands brushing past) is not worth a line


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


def _write_holder(fd: int, exclusive: bool, command: str) -> None:
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                       "mode": "exclusive" if exclusive else "shared"}).encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
    except OSError:
        pass  # only a hint


def describe_holder(fd: int) -> str:
    """Who holds the lock, as far as the lock file says (the last process that took it)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid, host, command, mode = info["pid"], info["host"], info["command"], info["mode"]
    except (OSError, ValueError, KeyError, TypeError):
        return "another snapstore process"
    return f"{command} (pid {pid} on {host}, {mode} lock)"


@contextmanager
def repository_lock(lock_path: Path, *, exclusive: bool, wait: float | None = None, command: str = "snapstore",
                    on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock; ``on_wait`` is told once, with a line naming the holder, if it waits long."""
    wait = lock_wait_from_env() if wait is None else wait
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        started = time.monotonic()
        deadline = started + wait
        delay = 0.01
        told = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if not told and on_wait is not None and now - started >= ANNOUNCE_AFTER_S and now < deadline:
                    told = True
                    on_wait(f"waiting for the repository lock, held by {describe_holder(fd)} "
                            f"(giving up after {wait:g} s, SNAPSTORE_LOCK_WAIT)")
                if time.monotonic() >= deadline:
                    kind = "exclusive" if exclusive else "shared"
                    raise LockFailed(
                        f"could not take the {kind} repository lock within {wait:g} s: "
                        f"held by {describe_holder(fd)}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        _write_holder(fd, exclusive, command)
        yield
    finally:
        os.close(fd)
