"""SQLite ``file:`` URIs built safely.

SQLite reads ``?`` as the start of the parameters and ``#`` as the end of the
name, and decodes ``%HH``: a path pasted into a URI unescaped can name another
file (``a#b/agent.db`` opens ``a``).  Every URI snapstore hands to SQLite, or to
the ``sqlite3`` shell, comes from here.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote


def sqlite_uri(path: str | os.PathLike, **params: object) -> str:
    name = quote(str(Path(path).absolute()), safe="/")
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"file:{name}?{query}" if query else f"file:{name}"
