"""Helpers of the verify tests: what uses what in a repository, and ways to damage it.

What-uses-what is read without the local cache (``cache=False``), so a test's own cache
stays cold until the code under test reads the damaged repository."""
from __future__ import annotations

from snapstore.chunklist import load_list
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.repository.pack import BLOB_DATA, BLOB_TREE, pack_name

from backends import RepoObjects

PACK_SIZE = 256 * 1024  # small packs: the database spreads over several data packs
DB_PATH = "database/sqlite.db"


def _open(location: str) -> Repository:
    return Repository.open(location, cache=False)


# -- what uses what, computed from the undamaged repository -----------------------------

def file_chunks(location: str) -> dict[tuple[str, str], set[bytes]]:
    """(snapshot id, path) -> ids of the data chunks that file needs."""
    repo = _open(location)
    out = {}
    with repo.reader() as reader:
        for snap in list_snapshots(repo):
            for entry in snap.files:
                ids = load_list(entry.chunks, reader)
                out[(snap.id, entry.path)] = {ids[i:i + 32] for i in range(0, len(ids), 32)}
    return out


def file_trees(location: str) -> dict[tuple[str, str], set[bytes]]:
    """(snapshot id, path) -> ids of the chunk-list tree blobs that file needs."""
    repo = _open(location)
    out = {}
    with repo.reader() as reader:
        for snap in list_snapshots(repo):
            for entry in snap.files:
                out[(snap.id, entry.path)] = set(entry.chunks.tree_ids(reader))
    return out


def users_of(uses: dict[tuple[str, str], set[bytes]], blob_ids: set[bytes]) -> dict[str, set[str]]:
    """snapshot id -> paths of the files that need any of ``blob_ids``."""
    out: dict[str, set[str]] = {}
    for (sid, path), ids in uses.items():
        if ids & blob_ids:
            out.setdefault(sid, set()).add(path)
    return out


def _packs_of(location: str, blob_type: int) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for pack_id, entries in _open(location).index.by_pack().items():
        if all(loc.blob_type == blob_type for _bid, loc in entries):
            out[pack_id] = [bid for bid, _loc in entries]
    return out


def data_packs(location: str) -> dict[bytes, list[bytes]]:
    """pack id -> ids of the data blobs in it (packs of data blobs only)."""
    return _packs_of(location, BLOB_DATA)


def tree_packs(location: str) -> dict[bytes, list[bytes]]:
    return _packs_of(location, BLOB_TREE)


def flip_byte(location: str, name: str, offset: int) -> None:
    RepoObjects(location).flip(name, offset, 0x5A)


def flip_blob(location: str, blob_id: bytes) -> bytes:
    """Flip one byte in the middle of a blob's payload; returns its pack id."""
    loc = _open(location).index.get(blob_id)
    flip_byte(location, pack_name(loc.pack_id), loc.offset + loc.stored_length // 2)
    return loc.pack_id


def payload_members(location: str, blob_id: bytes) -> set[bytes]:
    """Every blob stored in the same payload (zstd frame) as ``blob_id``: a flipped byte may damage any."""
    index = _open(location).index
    loc = index.get(blob_id)
    return {bid for bid, other in index.by_pack()[loc.pack_id] if other.offset == loc.offset}
