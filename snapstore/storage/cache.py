"""A local cache of a remote repository's metadata: index files, snapshot manifests and tree packs.

restic's cache is the model.  Listing snapshots, ``ls``, a quick ``verify`` and
a backup of an unchanged agent read only these objects, so with the cache they
download (almost) nothing but listings.  Everything cached is immutable and
named by the BLAKE3 of its bytes, which makes the cache safe by construction:

* a cached file is re-hashed when read (a pack once per process), and one that
  does not match its name is dropped and downloaded again -- a damaged or
  tampered cache never changes a result;
* objects written by this host go into the cache as they are stored
  (write-through), so the next command does not download them back;
* ``prune_to`` drops cached files whose objects left the repository.

Deleting the cache directory at any time only costs downloads.  Location:
``SNAPSTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/snapstore``, else
``~/.cache/snapstore``; one subdirectory per repository id.  The local backend
is never cached (its files are already local).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable, Iterator

import blake3

from ..atomic import make_dirs, remove_stale_temps, write_atomic
from .base import ObjectInfo, StagedObject, Storage

CACHED_PREFIXES = ("index/", "snapshots/")


def default_cache_root() -> Path:
    explicit = os.environ.get("SNAPSTORE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "snapstore"


def _hash_name(name: str) -> str:
    return name.rsplit("/", 1)[-1]


class _TeeStaged(StagedObject):
    """A staged tree pack whose bytes also go to the cache when it is committed."""

    def __init__(self, inner: StagedObject, cache: "CachedStorage"):
        self._inner, self._cache = inner, cache
        self._copy = io.BytesIO()

    @property
    def size(self) -> int:
        return self._inner.size

    def write(self, data: bytes | memoryview) -> None:
        self._inner.write(data)
        self._copy.write(data)

    def commit(self, name: str) -> None:
        self._inner.commit(name)
        self._cache._keep(name, self._copy.getvalue())

    def abort(self) -> None:
        self._inner.abort()


class CachedStorage(Storage):
    """Wraps a remote ``Storage``; reads of cacheable objects are served from ``root`` when possible."""

    def __init__(self, inner: Storage, root: Path):
        self.inner = inner
        self.root = Path(root)
        self.location = inner.location
        self.is_local = inner.is_local
        self.tree_packs: set[str] = set()  # names of packs holding tree blobs (the repository tells us)
        self._checked: set[str] = set()  # cached packs already re-hashed by this process
        make_dirs(self.root)
        for sub in self._dirs():
            remove_stale_temps(sub)

    def _dirs(self) -> list[Path]:
        found = []
        for top in ("index", "snapshots", "data"):
            base = self.root / top
            found.append(base)
            if top == "data" and base.is_dir():
                found.extend(p for p in base.iterdir() if p.is_dir())
        return found

    def __getstate__(self) -> dict:
        return {"inner": self.inner, "root": self.root, "tree_packs": self.tree_packs}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["inner"], state["root"])
        self.tree_packs = state["tree_packs"]

    def _path(self, name: str) -> Path:
        return self.root / name  # the repository's own layout

    def _cacheable(self, name: str) -> bool:
        return name.startswith(CACHED_PREFIXES) or name in self.tree_packs

    def _keep(self, name: str, data: bytes) -> None:
        try:
            write_atomic(self._path(name), data, overwrite=True)
        except OSError:  # a full or read-only cache disk only costs downloads
            pass

    def _cached(self, name: str) -> bytes | None:
        """The cached bytes of ``name`` if present and intact; a bad copy is removed."""
        path = self._path(name)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if name in self._checked or blake3.blake3(data).hexdigest() == _hash_name(name):
            self._checked.add(name)
            return data
        path.unlink(missing_ok=True)  # disagrees with its name: fetch it again
        return None

    # -- reads ---------------------------------------------------------------
    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if not self._cacheable(name):
            return self.inner.get(name, offset, length)
        data = self._cached(name)
        if data is None:
            data = self.inner.get(name)
            if blake3.blake3(data).hexdigest() == _hash_name(name):  # only intact objects are cached
                self._keep(name, data)
                self._checked.add(name)
        end = len(data) if length is None else offset + length
        return data[offset:end] if (offset or length is not None) else data

    def get_many(self, wanted: Iterable[tuple[str, int, int]]) -> Iterator[bytes]:
        """Data packs (what restores read this way) are not cached: they go to the backend's
        read-ahead; a cacheable object among the requests is served, in its turn, by ``get``."""
        requests = iter(wanted)
        while True:
            cached: list[tuple[str, int, int]] = []

            def uncached() -> Iterator[tuple[str, int, int]]:
                for request in requests:
                    if self._cacheable(request[0]):
                        cached.append(request)
                        return
                    yield request

            yield from self.inner.get_many(uncached())
            if not cached:
                return
            yield self.get(*cached[0])

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def stat(self, name: str) -> ObjectInfo:
        return self.inner.stat(name)

    # -- writes: through to the repository, copies kept ------------------------
    def put(self, name: str, data: bytes, *, create_only: bool = False) -> bool:
        created = self.inner.put(name, data, create_only=create_only)
        if name.startswith(CACHED_PREFIXES):
            self._keep(name, data)
        return created

    def stage(self, kind: str) -> StagedObject:
        staged = self.inner.stage(kind)
        return _TeeStaged(staged, self) if kind == "tree" else staged

    def delete(self, name: str) -> None:
        self.inner.delete(name)
        self._path(name).unlink(missing_ok=True)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def prune_to(self, prefix: str, present: set[str]) -> None:
        """Drop cached objects under ``prefix`` that are not in ``present`` (object names)."""
        for sub in self._dirs():
            rel = sub.relative_to(self.root).as_posix() + "/"
            if not rel.startswith(prefix):
                continue
            try:
                entries = list(os.scandir(sub))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.is_file() and ".tmp-" not in entry.name and rel + entry.name not in present:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass
