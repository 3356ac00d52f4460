"""Copying snapshots from one repository into another (restic's ``copy``).

This is how a plaintext (format v1) repository moves into an encrypted (v2) one, and how
snapshots reach a second, off-site repository.  Blob ids depend on the repository's id
key (unkeyed BLAKE3 in v1, BLAKE3 keyed with a secret in v2), so a copy re-hashes: each
blob a copied snapshot needs is read from the source (``BlobReader``: opened, decompressed
and checked against its source id), named with the destination's cipher, and stored there
once -- deduplicated across the copied snapshots and against what the destination holds.

* ``old id -> new id`` is kept in a dict for the whole run: ~180 bytes per chunk, so
  ~45 MB for the ~250 000 chunks of a 1 GB agent (measured: ``map_bytes`` in the result).
  It is seeded, without reading any chunk, from a snapshot that is already in both
  repositories (the copied parent of one being copied): the chunk lists of the two
  correspond position by position.  A few positions of each seeded list are re-hashed
  first, so a destination snapshot that only looks like the source's seeds nothing.
  When both repositories name blobs alike (two plaintext ones) nothing is re-hashed.
* Chunk lists are stored anew with the destination's ids: as a patch on the copied
  parent's list when that is cheaper (``chunklist.store_list``), else as a fresh base.
  Page chunks (SQLite) are compressed in groups of ``GROUP_PAGES``, as a backup does.
* The manifest keeps time, host, agent, tags, source, database and sanitised keys; its
  parent is the parent's copy in the destination (none if the parent is not there).
  ``summary`` keeps ``total_size``, ``database_unchanged`` (and any other entry) but counts
  what the copy added to the destination (``added_chunks``, ``new_data_bytes``, ``added_pack_bytes``),
  so ``stats`` and ``snapshots`` describe the destination's own growth; ``copied_from``
  records the source snapshot's id.
* A source snapshot is already present when the destination holds one with the same
  ``identity``: time, host, agent, tags, source, database, sanitised keys and each file's
  path, size, chunker and MD5.  It is skipped, so a second run adds nothing.

Both repositories are held under a shared lock, as a backup holds its repository.  Every
copied snapshot is committed as a backup is (packs, then an index file, then the
manifest), so a copy killed at any point leaves the destination consistent; the next run
reuses the chunks that reached an index file and copies the snapshots that are missing.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import msgpack
import zstandard

from ..chunklist import ListRef, load_list, store_list
from ..errors import IntegrityError, MissingChunk, UsageError
from ..ingest import GROUP_PAGES
from ..manifest import (FileEntry, Selection, Snapshot, content_digest, list_snapshots, resolve_snapshot,
                        save_snapshot)
from ..repository import BLOB_DATA, BlobReader, BlobWriter, Repository
from ..repository.pack import CODEC_ZSTD

ID = 32
BATCH_BYTES = 32 * 1024 * 1024  # blobs are read from the source in pieces of about this many plain bytes
SPOT_CHECKS = 3  # positions re-hashed before a list pair seeds the id map

Say = Callable[[str], None]


def identity(snap: Snapshot) -> bytes:
    """What makes two snapshots in different repositories the same snapshot (ids differ)."""
    return msgpack.packb([snap.time, snap.host, snap.agent, sorted(snap.tags), snap.source, snap.database,
                          snap.sanitized, [[f.path, f.size, f.chunker, f.md5] for f in snap.files]])


@dataclass
class CopiedSnapshot:
    source_id: str
    dest_id: str
    time: str
    agent: str
    host: str
    added_bytes: int  # packs, index files and manifest written for it
    added_chunks: int
    read_chunks: int  # chunks read from the source for it (the rest were mapped already)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CopyResult:
    source: str
    destination: str
    copied: list[CopiedSnapshot] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source id -> the destination's copy
    read_chunks: int = 0
    read_bytes: int = 0  # plain bytes read from the source
    added_bytes: int = 0  # everything written to the destination
    map_entries: int = 0
    map_bytes: int = 0  # memory the id map held at the end (approximate)
    duration_s: float = 0.0

    def as_dict(self) -> dict:
        return {"source": self.source, "destination": self.destination,
                "copied": [c.as_dict() for c in self.copied],
                "skipped": [{"source_id": s, "dest_id": d} for s, d in self.skipped.items()],
                "read_chunks": self.read_chunks, "read_bytes": self.read_bytes, "added_bytes": self.added_bytes,
                "map_entries": self.map_entries, "map_bytes": self.map_bytes,
                "duration_s": round(self.duration_s, 3)}


def select_snapshots(snaps: list[Snapshot], src: Repository, refs: Iterable[str], selection: Selection
                     ) -> list[Snapshot]:
    """The snapshots named by ``refs`` (ids, prefixes, ``latest``), else every selected one; oldest first."""
    refs = list(refs)
    if not refs:
        return [s for s in snaps if selection.matches(s)]
    chosen = {resolve_snapshot(src, ref, selection).id for ref in refs}
    return [s for s in snaps if s.id in chosen]


class _Copier:
    """One run: the source's reader, the destination's writer and reader, the id map."""

    def __init__(self, src: Repository, dest: Repository, writer: BlobWriter, progress):
        self.src, self.dest, self.writer = src, dest, writer
        self.src_reader: BlobReader = src.reader()
        self.dest_reader: BlobReader = dest.reader(writer.index)
        self.same_ids = src.cipher.id_key == dest.cipher.id_key
        self.map: dict[bytes, bytes] = {}
        self.progress = progress
        self.read_chunks = 0
        self.read_bytes = 0
        self._cctx = zstandard.ZstdCompressor()

    def close(self) -> None:
        self.src_reader.close()
        self.dest_reader.close()

    # -- the id map ------------------------------------------------------------
    def new_id(self, old: bytes) -> bytes | None:
        return old if self.same_ids else self.map.get(old)

    def seed(self, src_snap: Snapshot, dest_snap: Snapshot) -> None:
        """Map the ids of two copies of one snapshot, list position by list position."""
        if self.same_ids:
            return
        theirs = {f.path: f for f in dest_snap.files}
        for entry in src_snap.files:
            other = theirs.get(entry.path)
            if other is None or other.size != entry.size or other.chunks.count != entry.chunks.count:
                continue
            try:
                old, new = load_list(entry.chunks, self.src_reader), load_list(other.chunks, self.dest_reader)
            except IntegrityError:  # a damaged list seeds nothing; its chunks are read instead
                continue
            if len(old) != len(new) or not self._spot_check(old, new):
                continue
            for at in range(0, len(old), ID):
                self.map.setdefault(old[at:at + ID], new[at:at + ID])

    def _spot_check(self, old: bytes, new: bytes) -> bool:
        count = len(old) // ID
        for pos in sorted({0, count // 2, count - 1})[:SPOT_CHECKS] if count else []:
            try:
                data = self.src_reader.read(old[pos * ID:(pos + 1) * ID])
            except MissingChunk:
                if old[pos * ID:(pos + 1) * ID] == self.src.cipher.empty_id:
                    data = b""
                else:
                    return False
            except IntegrityError:
                return False
            if self.dest.cipher.blob_id(data) != new[pos * ID:(pos + 1) * ID]:
                return False
        return True

    # -- files -------------------------------------------------------------------
    def translate(self, entry: FileEntry) -> bytes:
        """The file's chunk list in destination ids; every chunk it names stored there."""
        old_ids = load_list(entry.chunks, self.src_reader)
        need: dict[bytes, None] = {}
        has = self.writer.has
        for at in range(0, len(old_ids), ID):
            old = old_ids[at:at + ID]
            if old in need:
                continue
            new = self.new_id(old)
            if new is None or not has(new):  # unknown, or mapped but lost from the destination
                need[old] = None
        if need:
            self._copy_blobs(list(need), grouped=entry.chunker.startswith("fixed-"))
        if self.same_ids:
            return old_ids
        mapped = self.map
        return b"".join([mapped[old_ids[at:at + ID]] for at in range(0, len(old_ids), ID)])

    def _copy_blobs(self, ids: list[bytes], grouped: bool) -> None:
        """Read ``ids`` from the source (hash-checked), name and store each in the destination."""
        empty = self.src.cipher.empty_id
        index = self.src_reader.index
        batch: list[bytes] = []
        lengths: list[int] = []
        size = 0
        for old in ids:
            if old == empty:
                self._store_empty()
                continue
            loc = index.get(old)
            if loc is None:
                raise MissingChunk(f"chunk {old.hex()[:16]} is not in the source repository's index "
                                   "(run 'snapstore verify' on it)")
            batch.append(old)
            lengths.append(loc.plain_length)
            size += loc.plain_length
            if size >= BATCH_BYTES:
                self._copy_batch(batch, lengths, size, grouped)
                batch, lengths, size = [], [], 0
        if batch:
            self._copy_batch(batch, lengths, size, grouped)

    def _copy_batch(self, batch: list[bytes], lengths: list[int], size: int, grouped: bool) -> None:
        buf = bytearray(size)
        view = memoryview(buf)
        if self.src_reader.read_into(view, b"".join(batch)) != size:
            raise IntegrityError("source chunks do not hold the bytes its index says")
        blob_id = self.dest.cipher.blob_id
        writer = self.writer
        group: list[bytes] = []
        members: list[tuple[bytes, int]] = []
        pending: set[bytes] = set()
        pos = 0
        for old, length in zip(batch, lengths):
            data = view[pos:pos + length]
            pos += length
            if self.same_ids:
                new = old  # both name blobs alike: nothing to re-hash or remember
            else:
                new = self.map[old] = blob_id(data)
            if not length:
                self._store_empty()
            elif writer.has(new) or new in pending:
                pass
            elif grouped:
                group.append(bytes(data))
                members.append((new, length))
                pending.add(new)
                if len(group) == GROUP_PAGES:
                    self._store_group(group, members)
                    group, members = [], []
            else:
                writer.add(new, bytes(data))
        if group:
            self._store_group(group, members)
        self.read_chunks += len(batch)
        self.read_bytes += size
        if self.progress:
            self.progress(size)

    def _store_group(self, group: list[bytes], members: list[tuple[bytes, int]]) -> None:
        codec, payload = self.writer.compress(b"".join(group))
        self.writer.add_payloads(BLOB_DATA, [(codec, payload, members)])

    def _store_empty(self) -> None:
        """The zero-byte chunk (PostgreSQL captures pad with it), stored as a zstd frame: never a
        0-byte payload."""
        empty = self.dest.cipher.empty_id
        if not self.writer.has(empty):
            self.writer.add_payloads(BLOB_DATA, [(CODEC_ZSTD, self._cctx.compress(b""), [(empty, 0)])])
        if not self.same_ids:
            self.map[self.src.cipher.empty_id] = empty

    def copy_entry(self, entry: FileEntry, parent: ListRef | None) -> FileEntry:
        ids = self.translate(entry)
        ref = store_list(ids, self.writer, parent, self.dest_reader)
        return FileEntry(path=entry.path, size=entry.size, chunker=entry.chunker, digest=content_digest(ids),
                         chunks=ref, mode=entry.mode, mtime=entry.mtime, md5=entry.md5)


def _map_bytes(mapping: dict[bytes, bytes]) -> int:
    if not mapping:
        return 0
    key, value = next(iter(mapping.items()))
    return sys.getsizeof(mapping) + len(mapping) * (sys.getsizeof(key) + sys.getsizeof(value))


def copy_snapshots(src: Repository, dest: Repository, refs: Iterable[str] = (), *,
                   selection: Selection = Selection(), say: Say | None = None,
                   progress: Callable[[int], None] | None = None) -> CopyResult:
    """Copy the snapshots ``refs`` names (default: every ``selection`` selects) from ``src`` into
    ``dest``; those already there are skipped.  See the module docstring."""
    if src.config.repo_id == dest.config.repo_id:
        raise UsageError(f"{src.location} and {dest.location} are the same repository")
    say = say or (lambda line: None)
    started = time.perf_counter()
    result = CopyResult(src.location, dest.location)
    with src.lock(), dest.lock():
        src_snaps = list_snapshots(src)
        wanted = select_snapshots(src_snaps, src, refs, selection)
        dest_snaps = list_snapshots(dest)
        present = {identity(s): s for s in dest_snaps}
        by_id = {s.id: s for s in dest_snaps}
        copy_of: dict[str, str] = {}  # source id -> destination id, for parents
        for snap in src_snaps:
            twin = present.get(identity(snap))
            if twin is not None:
                copy_of[snap.id] = twin.id
        todo = [s for s in wanted if s.id not in copy_of]
        for snap in wanted:
            if snap.id in copy_of:
                result.skipped[snap.id] = copy_of[snap.id]
        say(f"{len(todo)} of {len(wanted)} snapshots to copy"
            + (f" ({len(wanted) - len(todo)} already in the destination)" if len(todo) < len(wanted) else ""))
        if not todo:
            result.duration_s = time.perf_counter() - started
            return result
        src_by_id = {s.id: s for s in src_snaps}
        with dest.writer() as writer:
            copier = _Copier(src, dest, writer, progress)
            seeded: set[str] = set()
            written: set[str] = set()  # destination snapshots this run wrote: their ids are mapped already
            try:
                for n, snap in enumerate(todo, 1):
                    parent_id = copy_of.get(snap.parent) if snap.parent else None
                    parent = by_id.get(parent_id) if parent_id else None
                    if parent is not None and snap.parent not in seeded and parent_id not in written:
                        copier.seed(src_by_id[snap.parent], parent)
                        seeded.add(snap.parent)
                    say(f"copying snapshot {snap.short_id} ({n}/{len(todo)}) of {snap.agent} on {snap.host} "
                        f"from {snap.time}")
                    before = (writer.stats.blobs, writer.stats.data_bytes, writer.stats.file_bytes,
                              copier.read_chunks)
                    parent_lists = {f.path: f.chunks for f in parent.files} if parent else {}
                    files = [copier.copy_entry(entry, parent_lists.get(entry.path)) for entry in snap.files]
                    writer.flush()  # packs and their index file before the manifest that names them
                    copy = Snapshot(time=snap.time, host=snap.host, agent=snap.agent, files=files,
                                    tags=list(snap.tags), parent=parent_id, source=snap.source,
                                    database=snap.database, sanitized=list(snap.sanitized))
                    copy.summary = {  # what the copy added to the destination; the rest as it was
                        "total_size": sum(f.size for f in files), **snap.summary,
                        "added_chunks": writer.stats.blobs - before[0],
                        "new_data_bytes": writer.stats.data_bytes - before[1],
                        "added_pack_bytes": writer.stats.file_bytes - before[2],
                        "copied_from": snap.id,
                    }
                    save_snapshot(dest, copy)
                    copy_of[snap.id] = copy.id
                    written.add(copy.id)
                    by_id[copy.id] = copy
                    added = copy.summary["added_pack_bytes"] + dest.snapshot_size(copy.id)
                    result.copied.append(CopiedSnapshot(snap.id, copy.id, snap.time, snap.agent, snap.host, added,
                                                        copy.summary["added_chunks"],
                                                        copier.read_chunks - before[3]))
                    result.added_bytes += added
            finally:
                copier.close()
        result.read_chunks, result.read_bytes = copier.read_chunks, copier.read_bytes
        result.map_entries, result.map_bytes = len(copier.map), _map_bytes(copier.map)
    result.duration_s = time.perf_counter() - started
    return result

