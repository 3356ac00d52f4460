"""The storage interface: everything snapstore keeps in a repository goes through one ``Storage``.

A repository is a flat set of named objects (``config``, ``data/ab/<pack id>``,
``index/<id>``, ``snapshots/<id>``, ``locks/<id>``); names use ``/`` whatever
the backend.  The interface is restic's backend in Python (list, load a byte
range, save, stat, remove) plus ``stage``: packs are built incrementally into
a local file and committed whole, which the local backend does by renaming its
temp file into place (no copy) and S3 by uploading it -- in the background, so
the next pack is chunked meanwhile.  ``flush`` waits for those uploads; the
repository calls it before writing an index file that names the packs, so an
index never names a pack that is not stored.

Every object but a lock is immutable once written, so backends need no
read-modify-write; ``put(create_only=True)`` is the one conditional operation
(``If-None-Match: *`` on S3, ``O_EXCL``/link on a disk).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..errors import RepositoryNotFound, SnapstoreError


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    name: str
    size: int


class StorageError(SnapstoreError):
    """The repository's storage failed."""

    exit_code = 6


class StorageUnavailable(StorageError):
    """The repository's storage could not be reached (after retries)."""


class AccessDenied(StorageError):
    """The repository's storage refused the credentials or the request."""


class ObjectNotFound(StorageError):
    """No object of that name in the repository."""

    def __init__(self, name: str, where: str = ""):
        self.name, self.where = name, where
        super().__init__(f"{name} is missing from the repository{f' at {where}' if where else ''}")

    def __reduce__(self):  # may be raised in a worker process
        return type(self), (self.name, self.where)


class BucketNotFound(RepositoryNotFound):
    """The bucket does not exist."""


class StagedObject(abc.ABC):
    """An object written piece by piece into a local file, stored whole by ``commit``."""

    size: int

    @abc.abstractmethod
    def write(self, data: bytes | memoryview) -> None: ...

    @abc.abstractmethod
    def commit(self, name: str) -> None:
        """Store the bytes as ``name`` (possibly in the background: see ``Storage.flush``)."""

    @abc.abstractmethod
    def abort(self) -> None: ...


class Storage(abc.ABC):
    """A repository's objects.  Implementations: ``LocalStorage``, ``S3Storage``."""

    #: Human-readable place, for messages (a path or an ``s3:`` URL).
    location: str
    #: True when reads are local file reads: verify may then fork workers that read directly.
    is_local: bool = False

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose names start with ``prefix``, in no particular order (half-written ones excluded)."""

    @abc.abstractmethod
    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """The object's bytes, or ``length`` bytes from ``offset`` (fewer at its end); ObjectNotFound if absent."""

    def map(self, name: str):
        """The whole object as a buffer: mapped into memory where the storage can (no copy, no
        fresh memory for a large object read once), else its bytes; ObjectNotFound if absent."""
        return self.get(name)

    def get_into(self, name: str, offset: int, buf: memoryview) -> int:
        """Read ``len(buf)`` bytes from ``offset`` into ``buf``; returns how many there were."""
        data = self.get(name, offset, len(buf))
        buf[:len(data)] = data
        return len(data)

    def get_many(self, wanted: Iterable[tuple[str, int, int]]) -> Iterator[bytes]:
        """``get(name, offset, length)`` of each request, in order.  A remote backend fetches a
        few ahead, in parallel (a bounded number: memory does not grow with the requests);
        ``wanted`` is advanced only by the thread iterating the result."""
        for name, offset, length in wanted:
            yield self.get(name, offset, length)

    @abc.abstractmethod
    def put(self, name: str, data: bytes, *, create_only: bool = False) -> bool:
        """Store ``data`` as ``name`` atomically.  With ``create_only`` an existing object is
        left alone and False returned (content-named objects: it already holds these bytes)."""

    @abc.abstractmethod
    def stat(self, name: str) -> ObjectInfo:
        """Size of the object; ObjectNotFound if absent."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove the object; removing an absent one is not an error."""

    @abc.abstractmethod
    def stage(self, kind: str) -> StagedObject:
        """A local file to build a pack in; ``kind`` is ``"data"`` or ``"tree"`` (the cache keeps tree packs)."""

    def flush(self) -> None:
        """Wait until every committed ``StagedObject`` is stored; raises the first failure."""

    def exists(self, name: str) -> bool:
        try:
            self.stat(name)
            return True
        except ObjectNotFound:
            return False

    def remove_stale_temps(self) -> list[str]:
        """Remove what killed writers of this host left half-written; names of what went."""
        return []

    def close(self) -> None:
        """Release connections and wait for uploads (without raising)."""

    def __enter__(self) -> "Storage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
