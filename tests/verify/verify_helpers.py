"""Helpers of the verify tests: what uses what in a repository, and ways to damage it."""
from __future__ import annotations

from pathlib import Path

import msgpack

from snapstore.chunklist import load_list
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.repository.pack import BLOB_DATA, BLOB_TREE, pack_name

PACK_SIZE = 256 * 1024  # small packs: the database spreads over several data packs
DB_PATH = "database/sqlite.db"


def init_small_pack_repo(path: Path) -> Repository:
    Repository.init(path)
    cfg = msgpack.unpackb((path / "config").read_bytes())
    cfg["pack_size"] = PACK_SIZE
    (path / "config").write_bytes(msgpack.packb(cfg))
    return Repository.open(path)


# -- what uses what, computed from the undamaged repository -----------------------------

def file_chunks(repo_path: Path) -> dict[tuple[str, str], set[bytes]]:
    """(snapshot id, path) -> ids of the data chunks that file needs."""
    repo = Repository.open(repo_path)
    out = {}
    with repo.reader() as reader:
        for snap in list_snapshots(repo):
            for entry in snap.files:
                ids = load_list(entry.chunks, reader)
                out[(snap.id, entry.path)] = {ids[i:i + 32] for i in range(0, len(ids), 32)}
    return out


def file_trees(repo_path: Path) -> dict[tuple[str, str], set[bytes]]:
    """(snapshot id, path) -> ids of the chunk-list tree blobs that file needs."""
    repo = Repository.open(repo_path)
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


def data_packs(repo_path: Path) -> dict[bytes, list[bytes]]:
    """pack id -> ids of the data blobs in it (packs of data blobs only)."""
    out: dict[bytes, list[bytes]] = {}
    for pack_id, entries in Repository.open(repo_path).index.by_pack().items():
        if all(loc.blob_type == BLOB_DATA for _bid, loc in entries):
            out[pack_id] = [bid for bid, _loc in entries]
    return out


def tree_packs(repo_path: Path) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for pack_id, entries in Repository.open(repo_path).index.by_pack().items():
        if all(loc.blob_type == BLOB_TREE for _bid, loc in entries):
            out[pack_id] = [bid for bid, _loc in entries]
    return out


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


def flip_blob(repo_path: Path, blob_id: bytes) -> bytes:
    """Flip one byte in the middle of a blob's payload; returns its pack id."""
    loc = Repository.open(repo_path).index.get(blob_id)
    flip_byte(repo_path / pack_name(loc.pack_id), loc.offset + loc.stored_length // 2)
    return loc.pack_id


def payload_members(repo_path: Path, blob_id: bytes) -> set[bytes]:
    """Every blob stored in the same payload (zstd frame) as ``blob_id``: a flipped byte may damage any."""
    index = Repository.open(repo_path).index
    loc = index.get(blob_id)
    return {bid for bid, other in index.by_pack()[loc.pack_id] if other.offset == loc.offset}
