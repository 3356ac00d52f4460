"""The repository: a directory of packs, index files and snapshot manifests.

    REPO/config              format version and parameters (RepoConfig)
    REPO/data/ab/<pack id>   packs (pack.py), named by the BLAKE3 of their bytes
    REPO/index/<id>          index files (index.py), named by their BLAKE3
    REPO/snapshots/<id>      snapshot manifests (manifest.py), named by their BLAKE3
    REPO/locks/              the flock file (lock.py)

Write order is packs -> index file -> snapshot, each file created atomically, so a
snapshot file is the commit point: whatever a crash leaves behind is only
unreferenced packs (reused by the next backup once indexed, else removed by
prune), never a snapshot that names missing data.  Docs: docs/design.md.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import blake3
import zstandard

from ..atomic import TMP_MARK, fsync_dir, make_dirs, remove_stale_temps, write_atomic
from ..errors import IntegrityError, MissingChunk, RepositoryExists, RepositoryNotFound
from .config import RepoConfig
from .index import Index, Location, PackInfo, iter_index_files, load_index, read_index_file, write_index_file
from .lock import repository_lock
from .pack import BLOB_DATA, BLOB_RECORD, BLOB_TREE, CODEC_RAW, CODEC_ZSTD, PackWriter, pack_path

INDEX_EVERY_PACKS = 4  # an interrupted backup loses at most this many packs of reuse


@dataclass
class WriteStats:
    """What a writer added.  ``blobs``, ``plain_bytes`` and ``data_bytes`` count only blobs this
    writer was the first to index: a blob a concurrent backup indexed meanwhile is stored twice
    (harmless) but counted by the one that indexed it first.  ``file_bytes`` is what this
    writer put on disk, duplicates included."""

    blobs: int = 0
    plain_bytes: int = 0
    data_bytes: int = 0  # plain bytes of data (file content) blobs
    stored_bytes: int = 0
    packs: int = 0
    file_bytes: int = 0  # everything written to disk: packs, index files


class Repository:
    def __init__(self, path: Path, config: RepoConfig):
        self.path = Path(path)
        self.config = config
        self._index: Index | None = None
        self._held: str | None = None  # the lock this object holds: "shared" or "exclusive"
        self.command = "snapstore"  # who takes the lock, as a waiting process is told
        self.on_lock_wait: Callable[[str], None] | None = None  # told once if the lock is busy

    # -- opening -------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike) -> "Repository":
        path = Path(path)
        if (path / "config").exists():
            raise RepositoryExists(f"a snapstore repository already exists at {path}")
        if path.exists() and any(path.iterdir()):
            raise RepositoryExists(f"{path} exists and is not empty; choose a new directory")
        make_dirs(path)  # owner-only from the top: the repository holds the agent's whole memory
        for sub in ("data", "index", "snapshots", "locks"):
            make_dirs(path / sub)
        config = RepoConfig()
        write_atomic(path / "config", config.encode())
        return cls(path, config)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Repository":
        path = Path(path)
        if not path.is_dir():
            raise RepositoryNotFound(f"no snapstore repository at {path} (run 'snapstore init')")
        return cls(path, RepoConfig.read(path / "config"))

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    @property
    def index_dir(self) -> Path:
        return self.path / "index"

    @property
    def snapshot_dir(self) -> Path:
        return self.path / "snapshots"

    def remove_stale_temps(self) -> list[Path]:
        """Drop the half-written packs, index and snapshot files of killed writers on this host."""
        return [p for d in (self.path, self.data_dir, self.index_dir, self.snapshot_dir) for p in remove_stale_temps(d)]

    @contextmanager
    def lock(self, *, exclusive: bool = False, wait: float | None = None) -> Iterator["Repository"]:
        """Hold the repository lock; nested inside an exclusive hold it is already held
        (a repair reports through verify's shared-lock code while it holds the lock)."""
        if self._held == "exclusive" or (self._held == "shared" and not exclusive):
            self._index = None
            yield self
            return
        if self._held is not None:
            raise RuntimeError("cannot upgrade a shared repository lock to exclusive")
        with repository_lock(self.path / "locks" / "repository.lock", exclusive=exclusive, wait=wait,
                             command=self.command, on_wait=self.on_lock_wait):
            self._index = None  # other processes may have added packs since it was loaded
            self._held = "exclusive" if exclusive else "shared"
            try:
                yield self
            finally:
                self._held = None

    # -- index ---------------------------------------------------------------
    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = load_index(self.index_dir, present=self.pack_ids())
        return self._index

    def reload_index(self) -> Index:
        self._index = None
        return self.index

    def writer(self, index: Index | None = None) -> "BlobWriter":
        return BlobWriter(self, index)

    # -- reading blobs -------------------------------------------------------
    def reader(self) -> "BlobReader":
        return BlobReader(self)

    def read_blob(self, blob_id: bytes) -> bytes:
        with self.reader() as reader:
            return reader.read(blob_id)

    # -- snapshot files ------------------------------------------------------
    def write_snapshot_file(self, data: bytes) -> str:
        snapshot_id = blake3.blake3(data).hexdigest()
        write_atomic(self.snapshot_dir / snapshot_id, data)
        return snapshot_id

    def snapshot_ids(self) -> list[str]:
        if not self.snapshot_dir.is_dir():
            return []
        return sorted(p.name for p in self.snapshot_dir.iterdir() if TMP_MARK not in p.name)

    def read_snapshot_file(self, snapshot_id: str) -> bytes:
        return (self.snapshot_dir / snapshot_id).read_bytes()

    def remove_snapshot_file(self, snapshot_id: str) -> None:
        """The one place snapshot manifests are deleted (forget); the caller holds the exclusive lock.

        The packs the snapshot named stay until a prune frees what nothing references.
        A snapshot already gone (another forget) is not an error.
        """
        if len(snapshot_id) != 64 or any(c not in "0123456789abcdef" for c in snapshot_id):
            raise ValueError(f"not a snapshot id: {snapshot_id!r}")
        try:
            (self.snapshot_dir / snapshot_id).unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.snapshot_dir)

    def pack_files(self) -> list[Path]:
        return sorted(p for p in self.data_dir.glob("*/*") if TMP_MARK not in p.name)

    # -- packs and index files, for repairs ----------------------------------
    def pack_ids(self) -> set[bytes]:
        """The ids of the pack files on disk: one listing of ``data/`` (a few hundred entries)."""
        ids = set()
        for path in self.pack_files():
            try:
                ids.add(bytes.fromhex(path.name))
            except ValueError:
                continue  # a stray file is not a pack
        return ids

    def read_pack(self, pack_id: bytes) -> bytes:
        """A pack's whole bytes; FileNotFoundError if it is gone."""
        return pack_path(self.data_dir, pack_id).read_bytes()

    def delete_pack(self, pack_id: bytes) -> None:
        path = pack_path(self.data_dir, pack_id)
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)

    @contextmanager
    def index_update(self) -> Iterator[None]:
        """Serialises adding index files (held for milliseconds): a writer sees every file
        written before its own, so each blob is counted as added by exactly one backup."""
        with repository_lock(self.path / "locks" / "index.lock", exclusive=True, command=self.command):
            yield

    def replace_index(self, packs: list[PackInfo]) -> tuple[Path | None, int]:
        """Make ``packs`` the whole index: one new file, durable before the old ones are removed.

        A crash in between leaves the new file beside (some of) the old ones: the
        union still names only existing packs.  Returns the new file and how many
        old files were removed.
        """
        old = list(iter_index_files(self.index_dir))
        new_path = write_index_file(self.index_dir, packs) if packs else None
        removed = 0
        for path in old:
            if path != new_path:
                path.unlink()
                removed += 1
        fsync_dir(self.index_dir)
        self._index = None
        return new_path, removed


def _where(blob_id: bytes, loc: Location) -> str:
    return f"chunk {blob_id.hex()[:16]} in pack {loc.pack_id.hex()[:16]}"


class BlobReader:
    """Reads and checks blobs, keeping a few pack files open for sequential restores."""

    MAX_OPEN = 16

    def __init__(self, repo: Repository):
        self.repo = repo
        self.index = repo.index
        self._files: OrderedDict[bytes, object] = OrderedDict()
        self._dctx = zstandard.ZstdDecompressor()
        self._frame_key: tuple[bytes, int, int] | None = None  # last payload decompressed: pages of a
        self._frame: memoryview = memoryview(b"")          # group are usually read one after another
        self._region = bytearray()  # read_into's reusable buffer for one run of a pack

    def _file(self, pack_id: bytes):
        f = self._files.get(pack_id)
        if f is None:
            path = pack_path(self.repo.data_dir, pack_id)
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                raise IntegrityError(f"pack {pack_id.hex()[:16]} is missing from the repository") from None
            self._files[pack_id] = f
            if len(self._files) > self.MAX_OPEN:
                self._files.popitem(last=False)[1].close()
        else:
            self._files.move_to_end(pack_id)
        return f

    def read(self, blob_id: bytes) -> bytes:
        loc = self.index.get(blob_id)
        if loc is None:
            raise MissingChunk(f"chunk {blob_id.hex()[:16]} is not in the repository index")
        f = self._file(loc.pack_id)
        f.seek(loc.offset)
        payload = f.read(loc.stored_length)
        if len(payload) != loc.stored_length:
            raise IntegrityError(f"chunk {blob_id.hex()[:16]} in pack {loc.pack_id.hex()[:16]} is truncated")
        return self._check(blob_id, loc, payload)

    def runs(self, ids: bytes) -> Iterator[list[tuple[bytes, Location]]]:
        """Group a list of ids (32 bytes each) into runs stored back to back in one pack."""
        run: list[tuple[bytes, Location]] = []
        end = -1
        for off in range(0, len(ids), 32):
            blob_id = ids[off:off + 32]
            loc = self.index.get(blob_id)
            if loc is None:
                raise MissingChunk(f"chunk {blob_id.hex()[:16]} is not in the repository index")
            contiguous = run and loc.pack_id == run[-1][1].pack_id and loc.offset in (end, run[-1][1].offset)
            if run and (not contiguous or len(run) >= 4096):
                yield run
                run = []
            run.append((blob_id, loc))
            end = max(end, loc.offset + loc.stored_length) if contiguous else loc.offset + loc.stored_length
        if run:
            yield run

    def read_into(self, out: memoryview, ids: bytes, payloads: dict | None = None) -> int:
        """Write the blobs ``ids`` names into ``out`` from its start; returns the bytes written.

        The restore path: each run of a pack is read once, into a buffer this reader
        reuses, so restoring a large file does not allocate (and fault in) fresh
        memory for every run.  ``payloads`` collects (pack, offset) -> stored bytes
        of what was read: the file's share of the repository.
        """
        pos = 0
        for run in self.runs(ids):
            first = run[0][1]
            size = max(loc.offset + loc.stored_length for _, loc in run) - first.offset
            if len(self._region) < size:
                self._region = bytearray(size)
            region = memoryview(self._region)[:size]
            self._frame_key = None  # a cached raw frame may be a view into the buffer refilled here
            f = self._file(first.pack_id)
            f.seek(first.offset)
            if f.readinto(region) != size:
                raise IntegrityError(f"pack {first.pack_id.hex()[:16]} is truncated")
            for blob_id, loc in run:
                start = loc.offset - first.offset
                plain = self._view(blob_id, loc, region[start:start + loc.stored_length])
                if payloads is not None:
                    payloads[(loc.pack_id, loc.offset)] = loc.stored_length
                end = pos + len(plain)
                if end > len(out):
                    raise IntegrityError(f"chunks hold more than the {len(out)} bytes expected")
                out[pos:end] = plain
                pos = end
        return pos

    def _view(self, blob_id: bytes, loc: Location, payload) -> memoryview:
        """The blob's plain bytes (a view into its decompressed payload), hash-checked."""
        key = (loc.pack_id, loc.offset, loc.stored_length)
        if key != self._frame_key:
            try:
                frame = payload if loc.codec == CODEC_RAW else self._dctx.decompress(payload)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"{_where(blob_id, loc)} does not decompress: {exc}") from None
            self._frame_key, self._frame = key, memoryview(frame)
        plain = self._frame[loc.inner:loc.inner + loc.plain_length]
        if len(plain) != loc.plain_length or blake3.blake3(plain).digest() != blob_id:
            self._frame_key = None
            raise IntegrityError(f"{_where(blob_id, loc)} does not match its hash")
        return plain

    def _check(self, blob_id: bytes, loc: Location, payload) -> bytes:
        return bytes(self._view(blob_id, loc, payload))

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BlobWriter:
    """Adds blobs to packs (one open pack per blob type) and indexes them.

    ``flush`` finishes the open packs and writes an index file; it runs every
    ``INDEX_EVERY_PACKS`` packs and at the end, before any snapshot names them.
    Leaving the ``with`` block by an exception discards only the unfinished packs.
    """

    def __init__(self, repo: Repository, index: Index | None = None):
        self.repo = repo
        repo.remove_stale_temps()
        index = repo.index if index is None else index
        # Never deduplicate against a blob whose pack file is gone (deleted or lost since the
        # index named it): the blob is stored again, which heals every snapshot needing it.
        self.index = index.without(index.missing_packs) if index.missing_packs else index
        self.stats = WriteStats()
        self._cctx = zstandard.ZstdCompressor(level=repo.config.compression_level)
        self._open: dict[int, PackWriter] = {}
        self._unindexed: list[PackInfo] = []
        self._in_flight: set[bytes] = set()
        self.written: list[PackInfo] = []  # the packs this writer added, once indexed

    def has(self, blob_id: bytes) -> bool:
        return blob_id in self.index or blob_id in self._in_flight

    def compress(self, data: bytes) -> tuple[int, bytes]:
        payload = self._cctx.compress(data)
        if len(payload) >= len(data):
            return CODEC_RAW, bytes(data)
        return CODEC_ZSTD, payload

    def add(self, blob_id: bytes, data: bytes, blob_type: int = BLOB_DATA) -> bool:
        """Store ``data`` under its id unless already stored; True if it was new."""
        if self.has(blob_id):
            return False
        codec, payload = self.compress(data)
        return self.add_payloads(blob_type, [(codec, payload, [(blob_id, len(data))])]) == 1

    def add_tree(self, data: bytes) -> bytes:
        blob_id = blake3.blake3(data).digest()
        self.add(blob_id, data, BLOB_TREE)
        return blob_id

    def add_payloads(self, blob_type: int, payloads: list[tuple[int, bytes, list[tuple[bytes, int]]]]) -> int:
        """Store compressed payloads, each holding consecutive blobs (id, plain length).

        Blobs already stored are not indexed again; a payload all of whose blobs
        are known is skipped.  Returns how many blobs were new.  The page scan hands
        over thousands of payloads at a time; they go to disk in one write per pack.
        """
        fresh_payloads = []
        added = 0
        for codec, data, members in payloads:
            fresh, inner = [], 0
            for blob_id, plain in members:
                if not self.has(blob_id):
                    self._in_flight.add(blob_id)
                    fresh.append((blob_id, plain, inner))
                inner += plain
            if fresh:
                fresh_payloads.append((codec, data, fresh))
                added += len(fresh)
                self.stats.plain_bytes += sum(m[1] for m in fresh)
                if blob_type == BLOB_DATA:
                    self.stats.data_bytes += sum(m[1] for m in fresh)
        limit = self.repo.config.pack_size
        i = 0
        while i < len(fresh_payloads):
            pack = self._open.get(blob_type)
            if pack is None:
                pack = self._open[blob_type] = PackWriter(self.repo.data_dir)
            j, size = i + 1, len(fresh_payloads[i][1])
            while j < len(fresh_payloads) and pack.size + size + len(fresh_payloads[j][1]) <= limit:
                size += len(fresh_payloads[j][1])
                j += 1
            pack.add_payloads(blob_type, fresh_payloads[i:j])
            self.stats.stored_bytes += size
            i = j
            if pack.size >= limit or i < len(fresh_payloads):
                self._finish_pack(blob_type)
                if len(self._unindexed) >= INDEX_EVERY_PACKS:
                    self._write_index()
        self.stats.blobs += added
        return added

    def _finish_pack(self, blob_type: int) -> None:
        pack = self._open.pop(blob_type)
        pack_id, size, records = pack.finish()
        self._unindexed.append(PackInfo(pack_id, size, records))
        self.stats.packs += 1
        self.stats.file_bytes += size

    def _write_index(self) -> None:
        """Index the finished packs.  Under the index-update lock, index files that concurrent
        backups wrote meanwhile are loaded first: their blobs are not stored again by this
        writer, and those it already stored too are not counted as added by it."""
        if not self._unindexed:
            return
        with self.repo.index_update():
            self._load_new_index_files()
            path = write_index_file(self.repo.index_dir, self._unindexed)
        self.index.files.append(path.name)
        self.stats.file_bytes += path.stat().st_size
        self.written.extend(self._unindexed)
        for info in self._unindexed:
            for blob_id, btype, _codec, _off, _slen, plain, _inner in BLOB_RECORD.iter_unpack(info.records):
                if blob_id in self.index:  # indexed first by another backup
                    self.stats.blobs -= 1
                    self.stats.plain_bytes -= plain
                    self.stats.data_bytes -= plain if btype == BLOB_DATA else 0
        for info in self._unindexed:
            self.index.add_pack(info.pack_id, info.size, info.records)
            self._in_flight.difference_update(r[0] for r in BLOB_RECORD.iter_unpack(info.records))
        self._unindexed.clear()

    def _load_new_index_files(self) -> None:
        known = set(self.index.files)
        for path in iter_index_files(self.repo.index_dir):
            if path.name not in known:
                self.index.add_packs(read_index_file(path))
                self.index.files.append(path.name)

    def flush(self) -> None:
        for blob_type in list(self._open):
            self._finish_pack(blob_type)
        self._write_index()

    def abort(self) -> None:
        for pack in self._open.values():
            pack.abort()
        self._open.clear()

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.abort()
            # Finished packs stay; index them so the next run reuses their chunks.
            self._write_index()
