"""Result dictionaries of the Mirix-compatible API: one-line errors, never a traceback.

The reference's methods return ``{"success": bool, ..., "error": str}``; every
failure a user can cause (missing database, unwritable path, corrupt folder,
wrong key) becomes ``success: False`` with a message naming the thing at fault.
"""
from __future__ import annotations

import errno
import sqlite3

from ..errors import SnapstoreError


def error_text(exc: BaseException) -> str:
    """One line describing ``exc`` for a result's ``error``."""
    if isinstance(exc, SnapstoreError):
        text = exc.message
    elif isinstance(exc, OSError):
        name = exc.filename or ""
        if exc.errno == errno.ENOSPC:
            text = f"disk full while writing {name or 'the backup'}"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            text = f"permission denied: {name}" if name else f"permission denied: {exc.strerror or exc}"
        elif exc.strerror:
            text = f"{exc.strerror}: {name}" if name else exc.strerror
        else:
            text = str(exc)
    elif isinstance(exc, sqlite3.Error):
        text = f"database error: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
