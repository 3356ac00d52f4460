"""Repository locks: lock objects in ``locks/``, which work on any storage and across hosts.

A lock is an object ``locks/<random id>`` (msgpack: exclusive, host id, host
name, user, pid, pid namespace, command, time).  Taking one is restic's
protocol: store our lock object, then list the others; if one conflicts (an
exclusive lock, or any lock when we want an exclusive one) and is not stale,
remove ours and try again until ``SNAPSTORE_LOCK_WAIT`` runs out.  Two
exclusive takers racing both see each other and both back off (with jitter).
While held, a thread rewrites the object's time every ``REFRESH_S``.

A lock is stale when its time is older than ``STALE_AFTER_S`` (it was not
refreshed: its holder died or lost the storage), or at once when it was made
on this host (same host id and pid namespace) by a process that no longer runs
-- so a ``kill -9`` on this host never blocks the next run.  A stale lock is
ignored by lockers and removed by ``snapstore unlock``; ``--force`` removes
every lock.  Backups, imports, exports, restores, dumps and verifies lock
shared; forget, prune and repair lock exclusive.  A process that has to wait says once on
stderr whom it waits for (``on_wait``) instead of hanging silently for up to 600 s.  The flock of earlier versions is
gone: the same protocol on every backend, also for directories shared
between hosts (docs/design.md, "Locking").
"""
from __future__ import annotations

import fcntl
import os
import random
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import msgpack

from ..atomic import _pid_namespace, _process_alive
from ..errors import LockFailed, UsageError
from ..hostid import host_id, hostname

if TYPE_CHECKING:
    from ..storage import Storage

DEFAULT_LOCK_WAIT_S = 600.0
REFRESH_S = 5 * 60.0
STALE_AFTER_S = 30 * 60.0
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


@dataclass
class LockInfo:
    exclusive: bool
    host_id: str
    hostname: str
    pid: int
    pid_ns: str
    user: str
    command: str
    time: float
    name: str = ""  # object name, not stored

    def encode(self) -> bytes:
        doc = asdict(self)
        doc.pop("name")
        return msgpack.packb(doc)

    @classmethod
    def decode(cls, name: str, data: bytes) -> "LockInfo | None":
        try:
            doc = msgpack.unpackb(data)
            fields = {k: doc[k] for k in cls.__dataclass_fields__ if k != "name"}
            return cls(**fields, name=name)
        except Exception:
            return None  # unreadable lock objects are treated as stale by age of listing

    def stale(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if now - self.time > STALE_AFTER_S:
            return True
        return self.host_id == host_id() and self.pid_ns == _pid_namespace() and not _process_alive(self.pid)

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        age = max(0, int(time.time() - self.time))
        return f"{kind} lock by pid {self.pid} on {self.hostname} ({self.command}, refreshed {age} s ago)"


def _me(exclusive: bool, command: str | None) -> LockInfo:
    try:
        user = os.getlogin()
    except OSError:
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    command = command or " ".join(os.path.basename(a) for a in sys.argv[:2]) or "snapstore"
    return LockInfo(exclusive, host_id(), hostname(), os.getpid(), _pid_namespace(), user, command, time.time())


def list_locks(storage: "Storage") -> list[LockInfo]:
    from ..storage import ObjectNotFound
    found = []
    for obj in storage.list("locks/"):
        if obj.name.endswith(".lock"):  # flock files (format-1 snapstore's, the local index lock): not lock objects
            continue
        try:
            info = LockInfo.decode(obj.name, storage.get(obj.name))
        except ObjectNotFound:
            continue  # released while we listed
        if info is None:
            info = LockInfo(True, "?", "?", 0, "?", "?", "unreadable lock object", 0.0, obj.name)
        found.append(info)
    return found


class _Refresher(threading.Thread):
    def __init__(self, storage: "Storage", info: LockInfo):
        super().__init__(name="snapstore-lock-refresh", daemon=True)
        self.storage, self.info = storage, info
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(REFRESH_S):
            self.info.time = time.time()
            try:
                self.storage.put(self.info.name, self.info.encode())
            except Exception:  # the storage is away: the next refresh tries again
                pass


@contextmanager
def repository_lock(storage: "Storage", *, exclusive: bool, wait: float | None = None, command: str | None = None,
                    on_wait: Callable[[str], None] | None = None) -> Iterator[LockInfo]:
    """Hold a lock object; ``on_wait`` is told once, with a line naming the holder, if it waits long."""
    wait = lock_wait_from_env() if wait is None else wait
    me = _me(exclusive, command)
    me.name = f"locks/{os.urandom(16).hex()}"
    started = time.monotonic()
    deadline = started + wait
    delay = 0.05
    told = False
    while True:
        me.time = time.time()
        storage.put(me.name, me.encode())
        blocker = next((other for other in list_locks(storage) if other.name != me.name and not other.stale()
                        and (exclusive or other.exclusive)), None)
        if blocker is None:
            break
        storage.delete(me.name)
        now = time.monotonic()
        if not told and on_wait is not None and now - started >= ANNOUNCE_AFTER_S and now < deadline:
            told = True
            on_wait(f"waiting for the repository lock, held by {blocker.describe()} "
                    f"(giving up after {wait:g} s, SNAPSTORE_LOCK_WAIT)")
        if now >= deadline:
            kind = "exclusive" if exclusive else "shared"
            raise LockFailed(f"could not take the {kind} repository lock within {wait:g} s: "
                             f"held by {blocker.describe()} (if it is stale: 'snapstore unlock')")
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 2.0)
    refresher = _Refresher(storage, me)
    refresher.start()
    try:
        yield me
    finally:
        refresher.stop.set()
        refresher.join()
        try:
            storage.delete(me.name)
        except Exception:  # the storage is away: the lock goes stale after STALE_AFTER_S
            pass


@contextmanager
def host_mutex(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path``, for a moment's mutual exclusion between processes of one host."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_locks(storage: "Storage", *, force: bool = False) -> tuple[list[LockInfo], list[LockInfo]]:
    """Remove stale locks (every lock with ``force``); returns (removed, kept)."""
    removed, kept = [], []
    for info in list_locks(storage):
        if force or info.stale():
            storage.delete(info.name)
            removed.append(info)
        else:
            kept.append(info)
    return removed, kept
