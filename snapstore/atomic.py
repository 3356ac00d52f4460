"""Crash-safe file creation: temp file in the same directory, fsync, rename, fsync dir.

A reader never sees a half-written file under its final name: after a crash
there is at most a ``*.tmp-*`` leftover, which readers ignore.  Temp names carry
the host id (hostid.py), pid namespace and process that made them, so a later run on the same
host removes the leftovers of processes that are gone (``remove_stale_temps``)
and never touches work still in progress.  Files are created owner-only (0600)
because a repository holds the agent's whole memory.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
from pathlib import Path
from typing import Iterator

from .errors import UsageError
from .hostid import host_id

FILE_MODE = 0o600
DIR_MODE = 0o700
TMP_MARK = ".tmp-"


@functools.lru_cache(maxsize=None)
def _pid_namespace() -> str:
    """Which pid numbering this process sees: containers sharing a host name (and a disk) can
    each have a live process with the same pid, so a pid is only judged in its own namespace."""
    try:
        return re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or "0"
    except OSError:
        return "0"


def owner_tag() -> str:
    """Who makes temp files here: this host's id (hostid.py; two hosts never share one) and pid namespace."""
    return f"{host_id()[:32]}_{_pid_namespace()}"


_TEMP_OWNER = re.compile(re.escape(TMP_MARK) + r"(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)-[0-9a-f]+$")


def temp_name(name: str) -> str:
    """``name`` with a temp marker naming this host, pid namespace and process."""
    return f"{name}{TMP_MARK}{owner_tag()}.{os.getpid()}-{os.urandom(4).hex()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True


def is_stale_temp(name: str) -> bool:
    """A temp name made on this host by a process that no longer runs."""
    m = _TEMP_OWNER.search(name)
    return bool(m) and m["host"] == owner_tag() and not _process_alive(int(m["pid"]))


def remove_stale_temps(directory: Path) -> list[Path]:
    """Remove the temp files and folders that killed processes of this host left in ``directory``."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        if not is_stale_temp(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            import shutil  # rarely needed: not imported by every command

            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        if not os.path.lexists(entry.path):
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def temp_dir(parent: Path, label: str) -> Iterator[Path]:
    """A private work folder in ``parent`` (so results can be renamed into place), removed after."""
    path = Path(parent) / temp_name(f".snapstore-{label}")
    path.mkdir(mode=DIR_MODE)
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def make_parents(path: Path, what: str) -> list[Path]:
    """Create the missing folders above ``path`` (owner-only): every writer (export, dump,
    restore) does, so a first nightly run into ``~/backups/new/`` just works.  Returns the
    folders made, deepest first, for ``remove_made`` when the write fails."""
    parent = path.parent if str(path.parent) else Path(".")
    made = [d for d in [parent, *parent.parents] if not d.exists()]
    try:
        for folder in reversed(made):  # each one owner-only, not only the last
            folder.mkdir(mode=DIR_MODE, exist_ok=True)
    except OSError as exc:
        remove_made(made)
        raise UsageError(f"cannot create the {what}'s parent {parent}: {exc.strerror or exc}") from None
    if not parent.is_dir():
        raise UsageError(f"{what}'s parent {parent} is not a directory")
    return made


def remove_made(made: list[Path]) -> None:
    """Remove the folders ``make_parents`` made, if still empty (deepest first)."""
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()


class AtomicFile:
    """A file that appears under ``path`` only when ``commit()`` succeeds."""

    def __init__(self, path: Path, *, overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        make_dirs(self.path.parent)
        self.tmp_path = self.path.with_name(temp_name(self.path.name))
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

    def commit_exclusive(self) -> bool:
        """Like ``commit`` but never replaces: False (and nothing written) if the name exists.

        ``link(2)`` makes the check and the creation one atomic step, so of two
        writers of one name exactly one succeeds (create-only put).
        """
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        try:
            os.link(self.tmp_path, self.path)
        except FileExistsError:
            return False
        finally:
            os.unlink(self.tmp_path)
        fsync_dir(self.path.parent)
        return True

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
