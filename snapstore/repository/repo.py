"""The repository: packs, index files and snapshot manifests in a ``Storage``.

    config              format version and parameters (RepoConfig)
    keys/<id>           encrypted repositories: the master key, wrapped per passphrase (crypto/keys.py)
    data/ab/<pack id>   packs (pack.py), named by the BLAKE3 of their bytes
    index/<id>          index files (index.py), named by their BLAKE3
    snapshots/<id>      snapshot manifests (manifest.py), named by their BLAKE3
    locks/              lock objects (locks.py)

The storage is a local directory or an S3 bucket (snapstore/storage/); this
class is the only user of it besides verify and repair, which reach it through
``Repository.storage``.  Write order is packs -> index file -> snapshot, each
object created atomically, so a snapshot is the commit point: whatever a crash
leaves behind is only unreferenced packs (reused by the next backup once
indexed, and removed by ``snapstore prune`` if none does), never a snapshot that names missing data.
Docs: docs/design.md.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import blake3
import numpy as np
import zstandard

from ..crypto import PLAIN, Cipher, MasterKey, get_password
from ..crypto import keys as key_files
from ..crypto.cipher import PAYLOAD, SCHEME, SNAPSHOT
from ..errors import IntegrityError, MissingChunk, RepositoryExists, RepositoryNotFound
from ..storage import LocalStorage, ObjectNotFound, Storage, StorageError, open_storage
from ..storage.cache import CachedStorage, default_cache_root
from .blob import BlobDamage, check_blob, open_payload
from .config import RepoConfig
from .index import (Index, Location, PackInfo, decode_index_file, index_file_ids, index_file_name, load_index,
                    read_index_files, write_index_file)
from .lock import host_mutex, repository_lock
from .lookup import SortedLookup
from .pack import BLOB_DATA, BLOB_RECORD, BLOB_TREE, CODEC_RAW, CODEC_ZSTD, PackWriter, pack_id_of, pack_name

INDEX_EVERY_PACKS = 4  # an interrupted backup loses at most this many packs of reuse
RANGE_MAX = 8 * 1024 * 1024  # one ranged read of a remote pack at most: bounds the read-ahead's memory
RANGE_GAP = 256 * 1024  # blobs of one pack this close are fetched in one request, the gap with them
LONE_MAX = 64 * 1024  # a payload fetched alone, up to this size, is kept by the reader for its next reads
LONE_KEPT = 256  # ... this many of them at most (pages repeated across a file: several tasks want them)
LAYOUT = ("data", "index", "snapshots", "locks", "keys")
Password = "str | bytes | Callable[[], str] | None"  # None: crypto.get_password (environment, then terminal)


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
    file_bytes: int = 0  # everything stored: packs, index files


def _as_storage(where: "str | os.PathLike | Storage", options: dict[str, str] | None) -> Storage:
    return where if isinstance(where, Storage) else open_storage(os.fspath(where), options)


def _passphrase(password) -> str | bytes:
    if password is None:
        return get_password()
    return password() if callable(password) else password


class Repository:
    def __init__(self, storage: Storage, config: RepoConfig, cipher: Cipher = PLAIN, key_id: str | None = None):
        self.storage = storage
        self.config = config
        self.cipher = cipher  # names blobs, seals and opens every stored object
        self.key_id = key_id  # the key file this process opened an encrypted repository with
        self._index: Index | None = None
        self._held: str | None = None  # the lock this object holds: "shared" or "exclusive"
        self.command = "snapstore"  # who takes the lock, as a waiting process is told
        self.on_lock_wait: Callable[[str], None] | None = None  # told once if the lock is busy
        self.lookup_cache: Path | None = None  # where SortedLookup keeps its tables (open(cache=True))
        self.keep_index = False  # refresh the loaded index at each lock instead of reloading it (watch)

    @property
    def location(self) -> str:
        """Where the repository is, for messages: a path or an ``s3:`` URL."""
        return self.storage.location

    # -- opening -------------------------------------------------------------
    @classmethod
    def init(cls, where: "str | os.PathLike | Storage", options: dict[str, str] | None = None, *,
             encrypt: bool = False, password: Password = None, kdf_cost: dict | None = None) -> "Repository":
        """A new, empty repository; ``encrypt`` makes it format v2, its master key wrapped under
        ``password`` (docs/design.md "Encryption")."""
        storage = _as_storage(where, options)
        if storage.exists("config"):
            raise RepositoryExists(f"a snapstore repository already exists at {storage.location}")
        if isinstance(storage, LocalStorage):
            if storage.root.exists() and any(storage.root.iterdir()):
                raise RepositoryExists(f"{storage.location} exists and is not empty; choose a new directory")
            storage.make_layout(LAYOUT)
        elif next(iter(storage.list("")), None) is not None:
            raise RepositoryExists(f"{storage.location} is not empty; choose a new prefix")
        cipher, key_id = PLAIN, None
        if encrypt:
            config = RepoConfig(version=2, encryption=SCHEME)
            master = MasterKey.generate()
            key_id = key_files.add_key(storage, config.repo_id, master, _passphrase(password), kdf_cost)
            cipher = Cipher(master)
        else:
            config = RepoConfig()
        # the config last: a repository without one is not a repository, so a crash before
        # this leaves a directory the next init may use
        if not storage.put("config", config.encode(), create_only=True):
            raise RepositoryExists(f"a snapstore repository was just created at {storage.location}")
        return cls(storage, config, cipher, key_id)

    @classmethod
    def open(cls, where: "str | os.PathLike | Storage", options: dict[str, str] | None = None, *,
             cache: bool = True, password: Password = None) -> "Repository":
        """``cache``: keep index files, manifests and tree packs of a remote repository in
        the local cache (storage/cache.py); local repositories are never cached.
        ``password`` opens an encrypted repository (asked for only if it is one)."""
        storage = _as_storage(where, options)
        if isinstance(storage, LocalStorage) and not storage.root.is_dir():
            raise RepositoryNotFound(f"no snapstore repository at {storage.location} (run 'snapstore init')")
        try:
            data = storage.get("config")
        except ObjectNotFound:
            raise RepositoryNotFound(f"no snapstore repository at {storage.location} (run 'snapstore init')") from None
        config = RepoConfig.decode(data, storage.location)
        cipher, key_id = PLAIN, None
        if config.encrypted:
            master, key_id = key_files.open_master(storage, config.repo_id, _passphrase(password))
            cipher = Cipher(master)
        elif key_files.key_ids(storage):
            # a plaintext config beside key files was swapped in: writing would store plaintext
            raise IntegrityError(f"{storage.location}: the config says the repository is not encrypted but "
                                 "it holds key files; the config was replaced (downgrade refused)")
        if cache and not storage.is_local:
            storage = CachedStorage(storage, default_cache_root() / config.repo_id)
        repo = cls(storage, config, cipher, key_id)
        if cache:
            repo.lookup_cache = default_cache_root() / "lookup" / config.repo_id
        return repo

    def uncached(self) -> "Repository":
        """The same repository read without the local cache."""
        if isinstance(self.storage, CachedStorage):
            return Repository(self.storage.inner, self.config, self.cipher, self.key_id)
        return self

    def close(self) -> None:
        """Wait for uploads still running and release connections."""
        self.storage.close()

    def remove_stale_temps(self) -> list[str]:
        """Drop the half-written packs, index and snapshot files of killed writers on this host."""
        return self.storage.remove_stale_temps()

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
        with repository_lock(self.storage, exclusive=exclusive, wait=wait,
                             command=self.command, on_wait=self.on_lock_wait):
            self._refresh_index()  # other processes may have added packs since it was loaded
            self._held = "exclusive" if exclusive else "shared"
            try:
                yield self
            finally:
                self._held = None

    # -- index ---------------------------------------------------------------
    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = load_index(self.storage, lambda name: self.read_index_file(name.rsplit("/", 1)[-1]),
                                     present=self.pack_ids(), cipher=self.cipher)
            self.cache_tree_packs(self._index.tree_pack_ids(), self._index.files)
        return self._index

    def _refresh_index(self) -> None:
        """Drop the loaded index -- or, with ``keep_index`` (a long-running watch, whose every
        tick would otherwise reload the whole index), keep it when the index files it was
        built from are all still there and load only the new ones.  A prune or repair replaces
        index files, which drops it.  (A pack lost outside those is noticed at the next load.)"""
        if self._index is None or not self.keep_index:
            self._index = None
            return
        current = index_file_ids(self.storage)
        known = set(self._index.files)
        if not known <= set(current):
            self._index = None
            return
        for file_id in current:
            if file_id not in known:
                self._index.add_packs(decode_index_file(file_id, self.read_index_file(file_id), cipher=self.cipher))
                self._index.files.append(file_id)

    def lookup(self) -> "Index | SortedLookup":
        """Blob locations for a command that reads only a few of the repository's blobs (a
        diff): the index if it is loaded already, else a ``SortedLookup`` (lookup.py)."""
        if self._index is not None:
            return self._index
        files = read_index_files(self.storage, self.storage.map, views=True,  # mapped: its records are not copied
                                 cipher=self.cipher)
        lookup = SortedLookup(files, self.pack_ids(), self.lookup_cache)
        self.cache_tree_packs(lookup.tree_pack_ids(), [file_id for file_id, _ in files])
        return lookup

    def cache_tree_packs(self, pack_ids: list[bytes], index_files: list[str]) -> None:
        """Tell the cache which packs hold trees (it keeps those) and which index files exist."""
        if isinstance(self.storage, CachedStorage):
            trees = {pack_name(pid) for pid in pack_ids}
            self.storage.tree_packs = trees
            self.storage.prune_to("index/", {f"index/{fid}" for fid in index_files})
            self.storage.prune_to("data/", trees)

    def read_pack_range(self, pack_id: bytes, offset: int, length: int) -> bytes:
        """Bytes of a pack; ObjectNotFound if the pack is gone."""
        return self.storage.get(pack_name(pack_id), offset, length)

    def read_index_file(self, file_id: str) -> bytes:
        return self.storage.get(index_file_name(file_id))

    def reload_index(self) -> Index:
        self._index = None
        return self.index

    def writer(self, index: Index | None = None) -> "BlobWriter":
        return BlobWriter(self, index)

    # -- reading blobs -------------------------------------------------------
    def reader(self, index: "Index | SortedLookup | None" = None, keep_frames: int = 0) -> "BlobReader":
        """A reader resolving blobs through ``index`` (default: the repository's)."""
        return BlobReader(self, index, keep_frames)

    def read_blob(self, blob_id: bytes) -> bytes:
        with self.reader() as reader:
            return reader.read(blob_id)

    # -- snapshot files ------------------------------------------------------
    def write_snapshot_file(self, data: bytes) -> str:
        """Store a manifest (sealed in an encrypted repository); its id is the hash of what is stored."""
        self.storage.flush()  # the commit point: every pack it names must be stored first
        data = self.cipher.seal(data, SNAPSHOT)
        snapshot_id = blake3.blake3(data).hexdigest()
        self.storage.put(f"snapshots/{snapshot_id}", data, create_only=True)
        return snapshot_id

    def snapshot_sizes(self) -> dict[str, int]:
        """Every snapshot id with its manifest's size, from one listing."""
        sizes = {info.name.rsplit("/", 1)[-1]: info.size for info in self.storage.list("snapshots/")}
        if isinstance(self.storage, CachedStorage):
            self.storage.prune_to("snapshots/", {f"snapshots/{sid}" for sid in sizes})
        return sizes

    def snapshot_ids(self) -> list[str]:
        return sorted(self.snapshot_sizes())

    def read_snapshot_file(self, snapshot_id: str) -> bytes:
        """The manifest's plain bytes; ObjectNotFound if there is no such snapshot,
        IntegrityError if its bytes are not what its id says (or do not open)."""
        data = self.storage.get(f"snapshots/{snapshot_id}")
        if blake3.blake3(data).hexdigest() != snapshot_id:
            raise IntegrityError(f"snapshot {snapshot_id[:8]} manifest is corrupt (hash mismatch)")
        return self.cipher.open(data, SNAPSHOT, f"snapshot {snapshot_id[:8]} manifest")

    def remove_snapshot_file(self, snapshot_id: str) -> None:
        """The one place snapshot manifests are deleted (forget); the caller holds the exclusive lock.

        The packs the snapshot named stay until a prune frees what nothing references.
        A snapshot already gone (another forget) is not an error.
        """
        if len(snapshot_id) != 64 or any(c not in "0123456789abcdef" for c in snapshot_id):
            raise ValueError(f"not a snapshot id: {snapshot_id!r}")
        self.storage.delete(f"snapshots/{snapshot_id}")

    def snapshot_size(self, snapshot_id: str) -> int:
        return self.storage.stat(f"snapshots/{snapshot_id}").size

    def pack_names(self) -> list[str]:
        return sorted(info.name for info in self.storage.list("data/") if pack_id_of(info.name) is not None)

    # -- packs and index files, for repairs ----------------------------------
    def pack_ids(self) -> set[bytes]:
        """The ids of the packs in the storage: one listing of ``data/``."""
        return {pid for pid in (pack_id_of(info.name) for info in self.storage.list("data/")) if pid is not None}

    def read_pack(self, pack_id: bytes) -> bytes:
        """A pack's whole bytes; ObjectNotFound if it is gone."""
        return self.storage.get(pack_name(pack_id))

    def delete_pack(self, pack_id: bytes) -> None:
        self.storage.delete(pack_name(pack_id))

    @contextmanager
    def index_update(self) -> Iterator[None]:
        """Serialises adding index files (held for milliseconds): a writer sees every file
        written before its own, so each blob is counted as added by exactly one backup.
        A local directory uses a host mutex; an object store has no cheap one, so there two
        backups indexing the same new chunk at the same moment may both count it (the
        repository itself is right either way)."""
        if isinstance(self.storage, LocalStorage):
            with host_mutex(self.storage.root / "locks" / "index.lock"):
                yield
        else:
            yield

    def replace_index(self, packs: list[PackInfo], *,
                      before_delete: Callable[[str], None] | None = None) -> tuple[str | None, int]:
        """Make ``packs`` the whole index: one new file, stored before the old ones are removed.

        A crash in between leaves the new file beside (some of) the old ones: the
        union still names only existing packs.  Returns the new file's id and how
        many old files were removed.  ``before_delete`` is told each old file's name first.
        """
        old = index_file_ids(self.storage)
        new_id = write_index_file(self.storage, packs, self.cipher)[0] if packs else None
        removed = 0
        for file_id in old:
            if file_id != new_id:
                if before_delete is not None:
                    before_delete(index_file_name(file_id))
                self.storage.delete(index_file_name(file_id))
                removed += 1
        self._index = None
        return new_id, removed


def _coalesce(members: list, limit: int) -> Iterator[tuple[bytes, int, int, list]]:
    """Payloads sorted by (pack, offset) -- tuples whose first item is their ``Location`` --
    as ranges of one pack: (pack, offset, length, blobs).  A range takes the next blob of
    its pack if it starts at most ``RANGE_GAP`` past the range's end (fetching a small gap
    is cheaper than another request) and the range stays within ``limit`` bytes."""
    pack, start, end = b"", 0, 0
    group: list = []
    for member in members:
        loc = member[0]
        hi = loc.offset + loc.stored_length
        if group and loc.pack_id == pack and loc.offset <= end + RANGE_GAP and hi - start <= limit:
            end = max(end, hi)
        else:
            if group:
                yield pack, start, end - start, group
            pack, start, end, group = loc.pack_id, loc.offset, hi, []
        group.append(member)
    if group:
        yield pack, start, end - start, group


def _missing_pack(pack_id: bytes, name: str = "") -> IntegrityError:
    return IntegrityError(f"pack {pack_id.hex()[:16] if pack_id else name} is missing from the repository")


def _where(blob_id: bytes, loc: Location) -> str:
    return f"chunk {blob_id.hex()[:16]} in pack {loc.pack_id.hex()[:16]}"


RECENT_FRAMES = 4  # decompressed frames BlobReader keeps across runs (at most 1 MiB each)


class BlobReader:
    """Reads and checks blobs; keeps the last decompressed payload for sequential restores."""

    def __init__(self, repo: Repository, index: "Index | SortedLookup | None" = None, keep_frames: int = 0):
        self.repo = repo
        self.storage = repo.storage
        self.index = repo.index if index is None else index
        self.cipher = repo.cipher
        self._dctx = zstandard.ZstdDecompressor()
        self._keep = keep_frames  # read(): this many recent payloads stay decompressed (a diff's random reads)
        self._kept: OrderedDict[tuple[bytes, int, int], memoryview] = OrderedDict()
        self._frame_key: tuple[bytes, int, int] | None = None  # last payload decompressed: pages of a
        self._frame: memoryview = memoryview(b"")          # group are usually read one after another
        self._region = bytearray()  # read_into's reusable buffer for one run of a pack
        # The last few decompressed frames, across runs: a later snapshot's pages alternate
        # between an initial backup's 256 KiB frames and the small frames of its changes, each
        # switch ending a run; without these a large frame was decompressed once per change in it.
        self._recent: OrderedDict[tuple[bytes, int, int], memoryview] = OrderedDict()
        self._lone: OrderedDict[tuple[bytes, int, int], bytes] = OrderedDict()  # _read_remote's small ranges

    def _get(self, pack_id: bytes, offset: int, length: int) -> bytes:
        try:
            return self.repo.read_pack_range(pack_id, offset, length)
        except ObjectNotFound:
            raise _missing_pack(pack_id) from None

    def read(self, blob_id: bytes) -> bytes:
        loc = self.index.get(blob_id)
        if loc is None:
            raise MissingChunk(f"chunk {blob_id.hex()[:16]} is not in the repository index")
        key = (loc.pack_id, loc.offset, loc.stored_length)
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            self._frame_key, self._frame = key, kept
            return self._check(blob_id, loc, b"")
        payload = self._get(loc.pack_id, loc.offset, loc.stored_length)
        if len(payload) != loc.stored_length:
            raise IntegrityError(f"chunk {blob_id.hex()[:16]} in pack {loc.pack_id.hex()[:16]} is truncated")
        blob = self._check(blob_id, loc, payload)
        if self._keep:
            self._kept[key] = self._frame
            if len(self._kept) > self._keep:
                self._kept.popitem(last=False)
        return blob

    def _located(self, ids: bytes) -> Iterator[tuple[bytes, Location]]:
        """Each id of a packed id list with its location; the zero-byte blob is left out
        (nothing to read: its id says its content)."""
        empty = self.cipher.empty_id
        step = 4096 * 32  # ids resolved per vectorised lookup
        for start in range(0, len(ids), step):
            batch = ids[start:start + step]
            for off, loc in zip(range(0, len(batch), 32), self.index.locations(batch)):
                blob_id = batch[off:off + 32]
                if blob_id == empty:
                    continue
                if loc is None:
                    raise MissingChunk(f"chunk {blob_id.hex()[:16]} is not in the repository index")
                yield blob_id, loc

    def runs(self, ids: bytes, max_bytes: int | None = None) -> Iterator[list[tuple[bytes, Location]]]:
        """Group a list of ids (32 bytes each) into runs stored back to back in one pack (of at
        most 4096 blobs and about ``max_bytes`` stored bytes); the zero-byte blob is left out
        (nothing to read: its id says its content)."""
        run: list[tuple[bytes, Location]] = []
        end = -1
        for blob_id, loc in self._located(ids):
            contiguous = run and loc.pack_id == run[-1][1].pack_id and loc.offset in (end, run[-1][1].offset)
            if run and (not contiguous or len(run) >= 4096
                        or (max_bytes is not None and end - run[0][1].offset >= max_bytes)):
                yield run
                run = []
            run.append((blob_id, loc))
            end = max(end, loc.offset + loc.stored_length) if contiguous else loc.offset + loc.stored_length
        if run:
            yield run

    def read_into(self, out: memoryview, ids: bytes, payloads: dict | None = None) -> int:
        """Write the blobs ``ids`` names into ``out`` from its start; returns the bytes written.

        The restore path.  ``payloads`` collects (pack, offset) -> stored bytes of what was
        read: the file's share of the repository.  A local repository is read run by run
        in file order (one pread each, into a buffer this reader reuses); a remote one in
        pack order (``_read_remote``), since a request costs far more than a pread.
        """
        if not self.storage.is_local:
            return self._read_remote(out, ids, payloads)
        pos = 0
        for run in self.runs(ids):
            for loc, plain in self._run_blobs(run):
                if payloads is not None:
                    payloads[(loc.pack_id, loc.offset)] = loc.stored_length
                end = pos + len(plain)
                if end > len(out):
                    raise IntegrityError(f"chunks hold more than the {len(out)} bytes expected")
                out[pos:end] = plain
                pos = end
        return pos

    def _run_blobs(self, run: list[tuple[bytes, Location]]) -> Iterator[tuple[Location, memoryview]]:
        """Each blob of a run with its plain bytes (hash-checked), the run read at once into a
        buffer this reader reuses: a view stays valid until the next run is read."""
        first = run[0][1]
        size = max(loc.offset + loc.stored_length for _, loc in run) - first.offset
        if len(self._region) < size:
            self._region = bytearray(size)
        region = memoryview(self._region)[:size]
        self._frame_key = None  # a cached raw frame may be a view into the buffer refilled here
        try:
            got = self.storage.get_into(pack_name(first.pack_id), first.offset, region)
        except ObjectNotFound:
            raise _missing_pack(first.pack_id) from None
        if got != size:
            raise IntegrityError(f"pack {first.pack_id.hex()[:16]} is truncated")
        for blob_id, loc in run:
            start = loc.offset - first.offset
            yield loc, self._view(blob_id, loc, region[start:start + loc.stored_length])

    def iter_plain(self, ids: bytes, block: int = 1 << 20, payloads: dict | None = None) -> Iterator[bytes]:
        """The blobs ``ids`` names, hash-checked, in blocks of about ``block`` bytes (blob
        boundaries not kept): one storage read per run of a pack, as ``read_into`` does, and
        one copy of the bytes, where ``read`` per blob costs a read and ~10 µs of Python each
        (~0.8 s for the 80 000 chunks of a 700 MB PostgreSQL snapshot).  ``payloads`` collects
        what was read, as ``read_into``'s does."""
        views: list = []
        size = 0
        for run in self.runs(ids, max_bytes=block):  # the reused buffer stays about a block
            for loc, plain in self._run_blobs(run):
                if payloads is not None:
                    payloads[(loc.pack_id, loc.offset)] = loc.stored_length
                # a raw blob's view is into the region the next run refills; a compressed
                # one's into its own decompressed frame
                views.append(plain if loc.codec == CODEC_ZSTD else bytes(plain))
                size += loc.plain_length
                if size >= block:
                    yield b"".join(views)
                    views, size = [], 0
        if views:
            yield b"".join(views)

    def _read_remote(self, out: memoryview, ids: bytes, payloads: dict | None) -> int:
        """``read_into`` from object storage: every blob's place in ``out`` is known up front
        (the index has plain lengths), so the stored payloads are fetched sorted by pack and
        offset -- a file whose chunks alternate between an old pack and a newer one costs a
        few ranged GETs per pack, not one per switch -- through ``Storage.get_many`` (S3:
        several GETs in flight, a bounded number), and each blob is decoded straight to its
        place.  Ranges are as long as ``RANGE_MAX`` allows: a request costs the client and
        the server far more than the bytes do (docs/benchmarks.md, S3: cutting a restore
        task into ~1.5 MiB ranges cost SeaweedFS 3x the CPU of 8 MiB ones).

        Page chunks come 16 to a 64 KiB payload, so the work is grouped by payload: each run of
        consecutive chunks in one payload is one entry (its location, then each chunk's place,
        id and location), and only those entries are sorted and coalesced.  Every chunk is still
        hash-checked on its own (``_decode_group``)."""
        frames: list[tuple[Location, list]] = []  # (payload's location, [(where in out, id, location)])
        pos = 0
        pack, offset, pages = b"", -1, None
        for blob_id, loc in self._located(ids):
            if loc.offset != offset or loc.pack_id != pack:
                pack, offset, pages = loc.pack_id, loc.offset, []
                frames.append((loc, pages))
            pages.append((pos, blob_id, loc))
            pos += loc.plain_length
        if pos > len(out):
            raise IntegrityError(f"chunks hold more than the {len(out)} bytes expected")
        frames.sort(key=lambda f: (f[0].pack_id, f[0].offset))
        spans = list(_coalesce(frames, RANGE_MAX))
        lone = self._lone
        kept = {span[:3]: lone[span[:3]] for span in spans if span[:3] in lone}
        fetched = self.storage.get_many((pack_name(pack_id), start, length) for pack_id, start, length, _ in spans
                                        if (pack_id, start, length) not in kept)
        try:
            for pack_id, start, length, group in spans:
                data = kept.get((pack_id, start, length))
                if data is None:
                    try:
                        data = next(fetched)
                    except ObjectNotFound as exc:
                        raise _missing_pack(pack_id_of(exc.name) or b"", exc.name) from None
                    if len(data) != length:
                        raise IntegrityError(f"pack {pack_id.hex()[:16]} is truncated")
                    if length <= LONE_MAX:
                        lone[(pack_id, start, length)] = data
                        if len(lone) > LONE_KEPT:
                            lone.popitem(last=False)
                self._decode_group(memoryview(data), start, group, out, payloads)
        finally:
            fetched.close()
        return pos

    def _decode_group(self, region: memoryview, start: int, group: list, out: memoryview,
                      payloads: dict | None) -> None:
        """Each payload of a fetched range opened once (a payload wanted twice sorts next to
        itself), then each of its chunks hash-checked and copied to its place in ``out``.

        ``_view`` without its cache bookkeeping: this inner loop runs once per 4 KiB page
        (~240 000 times for a 1 GB database).  What is left per page is ``check_blob``
        (BLAKE3 of 4 KiB, ~2.7 us, most of it) and the copy."""
        cipher, dctx = self.cipher, self._dctx
        frame_at, frame = -1, memoryview(b"")
        for floc, pages in group:
            if floc.offset != frame_at:
                rel = floc.offset - start
                frame = memoryview(open_payload(cipher, floc.codec, region[rel:rel + floc.stored_length], dctx,
                                                _where(pages[0][1], floc)))
                frame_at = floc.offset
                if payloads is not None:
                    payloads[(floc.pack_id, floc.offset)] = floc.stored_length
            for at, blob_id, loc in pages:
                plain = check_blob(cipher, blob_id, frame, loc.inner, loc.plain_length)
                if plain is None:
                    raise BlobDamage("chunk-corrupt", f"{_where(blob_id, loc)} does not match its hash")
                out[at:at + len(plain)] = plain
        self._frame_key = None  # _view's cached frame is not this loop's

    def _view(self, blob_id: bytes, loc: Location, payload) -> memoryview:
        """The blob's plain bytes (a view into its decompressed payload), hash-checked."""
        key = (loc.pack_id, loc.offset, loc.stored_length)
        if key != self._frame_key:
            frame = self._recent.get(key)
            if frame is None:
                frame = memoryview(open_payload(self.cipher, loc.codec, payload, self._dctx, _where(blob_id, loc)))
                if loc.codec == CODEC_ZSTD:  # its own bytes (a raw one may be a view into a reused buffer)
                    self._recent[key] = frame
                    if len(self._recent) > RECENT_FRAMES:
                        self._recent.popitem(last=False)
            else:
                self._recent.move_to_end(key)
            self._frame_key, self._frame = key, frame
        plain = check_blob(self.cipher, blob_id, self._frame, loc.inner, loc.plain_length)
        if plain is None:
            self._frame_key = None
            self._recent.pop(key, None)
            raise BlobDamage("chunk-corrupt", f"{_where(blob_id, loc)} does not match its hash")
        return plain

    def _check(self, blob_id: bytes, loc: Location, payload) -> bytes:
        view = self._view(blob_id, loc, payload)
        whole = view.obj  # a raw blob stored alone (a chunk list's leaf: 128 KiB) is already its bytes
        return whole if type(whole) is bytes and len(view) == len(whole) else bytes(view)

    def close(self) -> None:
        self._region = bytearray()
        self._kept.clear()
        self._recent.clear()
        self._lone.clear()

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

    def has_all(self, ids: bytes) -> bool:
        """``has`` of every id of a packed id list, in C loops (a table's list holds ~10^5)."""
        mask = self.index.missing_mask(ids)
        return all(ids[i * 32:(i + 1) * 32] in self._in_flight for i in np.flatnonzero(mask).tolist())

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
        blob_id = self.repo.cipher.blob_id(data)
        self.add(blob_id, data, BLOB_TREE)
        return blob_id

    def add_payloads(self, blob_type: int, payloads: list[tuple[int, bytes, list[tuple[bytes, int]]]],
                     sealed: bool = False) -> int:
        """Store compressed payloads, each holding consecutive blobs (id, plain length).

        Blobs already stored are not indexed again; a payload all of whose blobs
        are known is skipped.  Returns how many blobs were new.  The page scan hands
        over thousands of payloads at a time; they go to disk in one write per pack.
        ``sealed``: the payloads are sealed already (the page scan's workers do it), else
        an encrypted repository's are sealed here.
        """
        seal = self.repo.cipher.seal if self.repo.cipher.encrypted and not sealed else None
        placed = []
        for codec, data, members in payloads:
            if seal is not None:
                data = seal(data, PAYLOAD)
            listed, inner = [], 0
            for blob_id, plain in members:
                listed.append((blob_id, plain, inner))
                inner += plain
            placed.append((codec, data, listed))
        return self.copy_payloads(blob_type, placed)

    def copy_payloads(self, blob_type: int, payloads: list[tuple[int, bytes, list[tuple[bytes, int, int]]]]) -> int:
        """``add_payloads`` for payloads already stored elsewhere (prune's repack): each names the
        blobs it holds as (id, plain length, inner offset), so a payload is copied as it is,
        without decompressing, and lists only the blobs still needed."""
        fresh_payloads = []
        added = 0
        unindexed = self.index.missing_of([m[0] for _codec, _data, members in payloads for m in members])
        for codec, data, members in payloads:
            fresh = []
            for blob_id, plain, inner in members:
                if blob_id in unindexed and blob_id not in self._in_flight:
                    self._in_flight.add(blob_id)
                    fresh.append((blob_id, plain, inner))
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
                pack = self._open[blob_type] = PackWriter(self.repo.storage, blob_type, self.repo.cipher)
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
        if blob_type == BLOB_TREE and isinstance(self.repo.storage, CachedStorage):
            self.repo.storage.tree_packs.add(pack_name(pack_id))  # its bytes went to the cache too
        self._unindexed.append(PackInfo(pack_id, size, records))
        self.stats.packs += 1
        self.stats.file_bytes += size

    def _write_index(self) -> None:
        """Index the finished packs.  Under the index-update lock, index files that concurrent
        backups wrote meanwhile are loaded first: their blobs are not stored again by this
        writer, and those it already stored too are not counted as added by it."""
        if not self._unindexed:
            return
        # An index file names only packs that are stored.  Waiting for the uploads comes before
        # loading the others' index files: between that load and this writer's index file, a
        # concurrent backup's index goes unseen (on S3, with no mutex, it counts the same blobs).
        self.repo.storage.flush()
        with self.repo.index_update():
            self._load_new_index_files()
            file_id, size = write_index_file(self.repo.storage, self._unindexed, self.repo.cipher)
        self.index.files.append(file_id)
        self.stats.file_bytes += size
        self.written.extend(self._unindexed)
        for info in self._unindexed:
            ids = b"".join(info.records[i:i + 32] for i in range(0, len(info.records), BLOB_RECORD.size))
            for at in np.flatnonzero(~self.index.missing_mask(ids)).tolist():  # indexed first by another backup
                _id, btype, _codec, _off, _slen, plain, _inner = BLOB_RECORD.unpack_from(info.records,
                                                                                          at * BLOB_RECORD.size)
                self.stats.blobs -= 1
                self.stats.plain_bytes -= plain
                self.stats.data_bytes -= plain if btype == BLOB_DATA else 0
            self._in_flight.difference_update(ids[i:i + 32] for i in range(0, len(ids), 32))
        self.index.add_packs([(info.pack_id, info.size, info.records) for info in self._unindexed])
        self._unindexed.clear()

    def _load_new_index_files(self) -> None:
        known = set(self.index.files)
        for file_id in index_file_ids(self.repo.storage):
            if file_id not in known:
                self.index.add_packs(decode_index_file(file_id, self.repo.read_index_file(file_id),
                                                       cipher=self.repo.cipher))
                self.index.files.append(file_id)

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
            # Finished packs stay; index them so the next run reuses their chunks -- unless
            # storing them failed too (the server went away): then they are left to repair.
            try:
                self._write_index()
            except StorageError:
                pass
