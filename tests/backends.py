"""The end-to-end suites on both repository backends: where a repository goes, and its objects
read and damaged behind snapstore's back.

A *location* is a string that works everywhere a repository is named: ``--repo``,
``Repository.init/open``, ``SNAPSTORE_REPO`` for the API.  It is a directory under the
test's temporary directory, or an ``s3:`` URL with a fresh prefix in the bucket of the
session's SeaweedFS server (tests/conftest.py: ``repo_url`` and ``s3_session``).

``RepoObjects`` reaches a repository's objects through the storage interface
(``open_storage``, no cache), so one code path flips a byte, truncates or deletes a
file on disk or an object on the server.  Damage is done on the repository only: a
warm local cache (S3) still holds intact copies of index files, manifests and tree
packs, as another host's cache would; tests that expect a cached read to see the
damage run with a cache of their own (``repo_url`` gives each test one).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import blake3
import pytest

from snapstore.storage import open_storage

BACKENDS = ["local", "s3"]


def repo_location(request, backend: str, local_path: Path) -> str:
    """A fresh repository location on ``backend``: ``local_path``, or a new prefix on the test S3 server."""
    if backend == "local":
        return str(local_path)
    from helpers import S3_BUCKET

    server = request.getfixturevalue("s3_session")
    return f"s3:{server.endpoint}/{S3_BUCKET}/{uuid.uuid4().hex[:12]}"


def fresh_location(request, backend: str, tmp_path: Path, monkeypatch) -> str:
    """``repo_location`` for one test; on S3 the test also gets a cache of its own (``XDG_CACHE_HOME``
    reaches CLI subprocesses too), as a fresh host would.  A test marked ``local_only(reason)``
    (about the local directory format itself) is skipped on S3."""
    if backend == "s3":
        marker = request.node.get_closest_marker("local_only")
        if marker is not None:
            pytest.skip(f"local repository only: {marker.args[0]}")
        cache = request.getfixturevalue("tmp_path_factory").mktemp("xdg-cache")  # not in tmp_path: tests list it
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return repo_location(request, backend, tmp_path / "repo")


def backend_of(location: str | os.PathLike) -> str:
    return "s3" if str(location).startswith("s3:") else "local"


class RepoObjects:
    """The raw objects of the repository at ``location`` (names as in the repository: ``data/ab/<id>``)."""

    def __init__(self, location: str | os.PathLike):
        self.location = str(location)
        self.storage = open_storage(self.location)

    def names(self, prefix: str = "") -> list[str]:
        return sorted(info.name for info in self.storage.list(prefix))

    def packs(self) -> list[str]:
        return self.names("data/")

    def size(self, name: str) -> int:
        return self.storage.stat(name).size

    def read(self, name: str) -> bytes:
        return self.storage.get(name)

    def write(self, name: str, data: bytes) -> None:
        self.storage.put(name, data)

    def flip(self, name: str, offset: int, mask: int = 0xFF) -> None:
        """XOR one byte of the object with ``mask`` (its name, and so its claimed hash, stays)."""
        data = bytearray(self.read(name))
        data[offset] ^= mask
        self.write(name, bytes(data))

    def truncate(self, name: str, size: int) -> None:
        self.write(name, self.read(name)[:size])

    def delete(self, name: str) -> None:
        self.storage.delete(name)

    def state(self) -> dict[str, str]:
        """Every object's name and content digest: equal states mean nothing was written."""
        return {name: blake3.blake3(self.read(name)).hexdigest() for name in self.names()}

    def copy_to(self, location: str | os.PathLike) -> str:
        """Copy every object into the (empty) ``location``; returns it."""
        dest = open_storage(str(location))
        try:
            for name in self.names():
                dest.put(name, self.read(name))
        finally:
            dest.close()
        return str(location)

    def close(self) -> None:
        self.storage.close()
