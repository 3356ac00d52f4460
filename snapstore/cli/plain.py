"""What a command prints and how an error becomes its one line, without click: shared by the
click commands (common.py) and the click-free fast path (fast.py), so both print the same."""
from __future__ import annotations

import errno
import json
import os
import sys
from typing import Any


def json_text(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, default=str)


def failure(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for an error a command ends with; None for a bug
    (let the traceback show).  A closed stdout pipe exits 141 at once, silently."""
    from ..errors import SnapstoreError

    if isinstance(exc, SnapstoreError):
        return exc.message, exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if not isinstance(exc, OSError) or exc.errno is None:  # not a system call failing (io.UnsupportedOperation, shutil.Error): a bug
        return None
    if exc.errno == errno.EPIPE:  # `snapstore … | head`: the reader has gone, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    if exc.errno == errno.ENOSPC:
        return f"disk full{f' while writing {where}' if where else ''}; nothing was committed", 1
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied: {where or exc.strerror or exc}", 1
    return f"{exc.strerror or exc}{f': {where}' if where else ''}", 1  # any other system error: one line
