"""The local backend: a repository directory, byte for byte the format snapstore always wrote.

Object ``a/b`` is the file ``ROOT/a/b``.  Writes go through ``AtomicFile``
(temp file beside the target, fsync, rename, fsync of the directory), so the
on-disk atomicity and fsync order are exactly those of the pre-interface code.
A staged pack is an ``AtomicFile`` in ``data/`` renamed to its hash name: no
copy.  Reads keep a few files open and use ``pread``, so a restore reading
runs of a pack costs one system call each, as before.
"""
from __future__ import annotations

import mmap
import os
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

from ..atomic import TMP_MARK, AtomicFile, make_dirs, remove_stale_temps, write_atomic
from .base import ObjectInfo, ObjectNotFound, StagedObject, Storage

MAX_OPEN = 16


class _LocalStaged(StagedObject):
    def __init__(self, storage: "LocalStorage"):
        self._storage = storage
        self._file = AtomicFile(storage.root / "data" / "pack")  # beside its final place: a rename, no copy

    @property
    def size(self) -> int:
        return self._file.size

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)

    def commit(self, name: str) -> None:
        self._file.commit(self._storage.path_of(name))

    def abort(self) -> None:
        self._file.abort()


class LocalStorage(Storage):
    is_local = True

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.location = str(self.root)
        self._fds: OrderedDict[str, int] = OrderedDict()

    def __getstate__(self) -> dict:  # handed to worker processes: open files stay behind
        return {"root": self.root}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"])

    def path_of(self, name: str) -> Path:
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"bad object name {name!r}")
        return self.root / name

    # -- reading -------------------------------------------------------------
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        directory, _, start = prefix.rpartition("/")
        base = self.root / directory if directory else self.root
        yield from self._walk(base, directory, start)

    def _walk(self, path: Path, rel: str, start: str) -> Iterator[ObjectInfo]:
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if not entry.name.startswith(start) or TMP_MARK in entry.name:
                continue
            name = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from self._walk(Path(entry.path), name, "")
                else:
                    yield ObjectInfo(name, entry.stat().st_size)
            except FileNotFoundError:  # removed while listing
                continue

    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is not None:
            self._fds.move_to_end(name)
            return fd
        try:
            fd = os.open(self.path_of(name), os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(name, self.location) from None
        self._fds[name] = fd
        if len(self._fds) > MAX_OPEN:
            os.close(self._fds.popitem(last=False)[1])
        return fd

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset == 0 and length is None:
            try:
                return self.path_of(name).read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                raise ObjectNotFound(name, self.location) from None
        fd = self._fd(name)
        if length is None:
            length = max(0, os.fstat(fd).st_size - offset)
        parts, want = [], length
        while want > 0:
            data = os.pread(fd, want, offset)
            if not data:
                break
            parts.append(data)
            offset += len(data)
            want -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def map(self, name: str):
        try:
            with open(self.path_of(name), "rb") as f:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(name, self.location) from None

    def get_into(self, name: str, offset: int, buf: memoryview) -> int:
        fd = self._fd(name)
        done = 0
        while done < len(buf):
            n = os.preadv(fd, [buf[done:]], offset + done)
            if n <= 0:
                break
            done += n
        return done

    def stat(self, name: str) -> ObjectInfo:
        try:
            return ObjectInfo(name, os.stat(self.path_of(name)).st_size)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(name, self.location) from None

    # -- writing -------------------------------------------------------------
    def put(self, name: str, data: bytes, *, create_only: bool = False) -> bool:
        path = self.path_of(name)
        if not create_only:
            write_atomic(path, data, overwrite=True)
            return True
        if path.exists():  # the common case for content-named objects: no temp file at all
            return False
        f = AtomicFile(path)
        try:
            f.write(data)
        except BaseException:
            f.abort()
            raise
        return f.commit_exclusive()

    def stage(self, kind: str) -> StagedObject:
        return _LocalStaged(self)

    def delete(self, name: str) -> None:
        self._forget(name)
        try:
            os.unlink(self.path_of(name))
        except FileNotFoundError:
            pass

    def _forget(self, name: str) -> None:
        fd = self._fds.pop(name, None)
        if fd is not None:
            os.close(fd)

    def make_layout(self, dirs: tuple[str, ...]) -> None:
        make_dirs(self.root)  # owner-only from the top: the repository holds the agent's whole memory
        for sub in dirs:
            make_dirs(self.root / sub)

    def remove_stale_temps(self) -> list[str]:
        dirs = [self.root] + [p for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else []
        return [str(p.relative_to(self.root)) for d in dirs for p in remove_stale_temps(d)]

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])
