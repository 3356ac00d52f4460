"""This host's identity: a random id kept in a user-level state file, plus the host name.

Temp-file and lock ownership need "the same host" to mean the same machine:
host names repeat (containers, cloned VMs, ``localhost``), so ownership is
decided by a random 128-bit id created once per user and machine, in
``$XDG_STATE_HOME/snapstore/host-id`` (``~/.local/state/snapstore/host-id``).
``SNAPSTORE_HOST_ID`` overrides it (tests acting as several hosts).  The host
name is only for display.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

_ID = re.compile(r"^[0-9a-f]{8,64}$")


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "snapstore"


@functools.lru_cache(maxsize=None)
def _stored_id(path: Path) -> str:
    try:
        found = path.read_text().strip()
        if _ID.match(found):
            return found
    except OSError:
        pass
    new = os.urandom(16).hex()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new + "\n")
        return new
    except FileExistsError:  # another process won the race: use its id
        return _stored_id.__wrapped__(path)
    except OSError:  # no writable home: this process's id is at least never another host's
        return new


def host_id() -> str:
    override = os.environ.get("SNAPSTORE_HOST_ID", "").strip().lower()
    if override:
        return re.sub(r"[^0-9a-z]", "", override)[:64] or "0"
    return _stored_id(state_dir() / "host-id")


def hostname() -> str:
    return os.uname().nodename or "host"  # what socket.gethostname() returns, without importing socket
