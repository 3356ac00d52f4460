"""Crash-safe file creation: temp file in the same directory, fsync, rename, fsync dir.

A reader never sees a half-written file under its final name: after a crash
there is at most a ``*.tmp-*`` leftover, which ``Repository`` ignores and
``prune`` removes.  Files are created owner-only (0600) because a repository
holds the agent's whole memory.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
TMP_MARK = ".tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


class AtomicFile:
    """A file that appears under ``path`` only when ``commit()`` succeeds."""

    def __init__(self, path: Path, *, overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        make_dirs(self.path.parent)
        self.tmp_path = self.path.with_name(f"{self.path.name}{TMP_MARK}{secrets.token_hex(6)}")
        fd = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        self._file = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        self._file.write(data)
        self.size += len(data)
        return len(data)

    def commit(self, final_path: Path | None = None) -> Path:
        """Make the file visible; ``final_path`` names it when the name is its hash."""
        if final_path is not None:
            self.path = Path(final_path)
            make_dirs(self.path.parent)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if not self.overwrite and self.path.exists():
            # Content-addressed names: an existing file already holds these bytes.
            os.unlink(self.tmp_path)
            return self.path
        os.replace(self.tmp_path, self.path)
        fsync_dir(self.path.parent)
        if self.tmp_path.parent != self.path.parent:
            fsync_dir(self.tmp_path.parent)
        return self.path

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_atomic(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    with AtomicFile(path, overwrite=overwrite) as f:
        f.write(data)
    return Path(path)
