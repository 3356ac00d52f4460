"""The chunk index: blob id -> where the blob lives.

On disk it is a set of immutable, content-named index files under ``index/``,
each listing some packs with their blob records (the same records a pack keeps
in its trailer).  Files are only ever added; a backup writes one every few packs
so that an interrupted backup's packs are found and reused by the next run.
``repair index`` replaces the whole set with one file rebuilt from the packs.
In memory the union is a dict from blob id to record number, next to the raw
record tables: ~130 bytes an entry (a 1 GB SQLite agent has ~250k page chunks).
"""
from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple

import blake3
import msgpack

from ..crypto.cipher import INDEX, PLAIN, Cipher
from ..errors import IntegrityError
from .pack import BLOB_RECORD, BLOB_TREE

if TYPE_CHECKING:
    from ..storage import Storage

INDEX_VERSION = 1


class Location(NamedTuple):
    """A tuple, so the ~250k entries of a large agent stay cheap to build and look up."""

    pack_id: bytes
    blob_type: int
    codec: int
    offset: int
    stored_length: int
    plain_length: int
    inner: int


@dataclass
class PackInfo:
    pack_id: bytes
    size: int
    records: bytes  # BLOB_RECORD records, as in the pack's trailer


class Index:
    """Union of all index files, plus the packs each index file names.

    The dict maps a blob id to a small int naming its record (pack number and
    position); the ``Location`` is unpacked only when asked for, so loading the
    ~250k entries of a 1 GB agent costs one dict insert each.
    """

    _SHIFT = 24  # records per pack stay far below 2**24

    def __init__(self) -> None:
        self._blobs: dict[bytes, int] = {}
        self._packs: list[tuple[bytes, bytes]] = []  # (pack id, records)
        self.pack_sizes: dict[bytes, int] = {}
        self.files: list[str] = []
        self.missing_packs: set[bytes] = set()  # listed packs whose file is gone (known at load)

    def __len__(self) -> int:
        return len(self._blobs)

    def __contains__(self, blob_id: bytes) -> bool:
        return blob_id in self._blobs

    def missing_of(self, blob_ids: Iterable[bytes]) -> set[bytes]:
        """The ids not indexed."""
        return set(blob_ids).difference(self._blobs.keys())

    def ids(self) -> Iterable[bytes]:
        return self._blobs.keys()

    def get(self, blob_id: bytes) -> Location | None:
        ref = self._blobs.get(blob_id)
        if ref is None:
            return None
        pack_id, records = self._packs[ref >> self._SHIFT]
        _, btype, codec, offset, slen, plen, inner = BLOB_RECORD.unpack_from(
            records, (ref & ((1 << self._SHIFT) - 1)) * BLOB_RECORD.size)
        return Location(pack_id, btype, codec, offset, slen, plen, inner)

    def add_pack(self, pack_id: bytes, size: int, records: bytes) -> None:
        self.add_packs([(pack_id, size, records)])

    def add_packs(self, packs: list[tuple[bytes, int, bytes]]) -> None:
        """Index packs given as (id, size, records); a blob already indexed keeps its place."""
        step = BLOB_RECORD.size
        entries = []
        for pack_id, size, records in packs:
            if len(records) % step:
                raise ValueError(f"pack {pack_id.hex()[:16]} has a truncated blob table")
            self.pack_sizes[pack_id] = size
            base = len(self._packs) << self._SHIFT
            self._packs.append((pack_id, records))
            ids = [records[i:i + 32] for i in range(0, len(records), step)]
            entries.append(dict(zip(ids, range(base, base + len(ids)))))
        if not self._blobs:
            # Loading: built in C, later packs first, so a blob stored twice keeps its earliest listing.
            for part in reversed(entries):
                self._blobs.update(part)
            return
        blobs = self._blobs
        for part in entries:  # a backup adding its few new packs
            for blob_id, ref in part.items():
                blobs.setdefault(blob_id, ref)

    def pack_infos(self) -> list[PackInfo]:
        """Every indexed pack once, in listing order: what a full index file must name."""
        seen: set[bytes] = set()
        infos = []
        for pack_id, records in self._packs:
            if pack_id not in seen:
                seen.add(pack_id)
                infos.append(PackInfo(pack_id, self.pack_sizes[pack_id], records))
        return infos

    def without(self, pack_ids: set[bytes]) -> "Index":
        """A copy that does not know the blobs of ``pack_ids`` (unless another pack holds them too)."""
        index = Index()
        index.add_packs([(p.pack_id, p.size, p.records) for p in self.pack_infos() if p.pack_id not in pack_ids])
        index.files = list(self.files)
        index.missing_packs = self.missing_packs - pack_ids
        return index
    def resolve(self, blob_ids: set[bytes]) -> tuple[dict[bytes, list[int]], int]:
        """Where reads find these blobs: per pack, the numbers of the records they resolve to
        (as in ``pack_infos()[...].records``), and how many blobs are not indexed at all.
        Set and sort operations only: a 1 GB agent's month is ~300k blobs."""
        blobs = self._blobs
        known = blob_ids & blobs.keys()
        refs = sorted(map(blobs.__getitem__, known))
        mask = (1 << self._SHIFT) - 1
        by_pack: dict[bytes, list[int]] = {}
        i = 0
        while i < len(refs):
            number = refs[i] >> self._SHIFT
            j = bisect.bisect_left(refs, (number + 1) << self._SHIFT, i)
            by_pack.setdefault(self._packs[number][0], []).extend(r & mask for r in refs[i:j])
            i = j
        return by_pack, len(blob_ids) - len(known)

    def tree_pack_ids(self) -> list[bytes]:
        """Packs of tree blobs (a pack holds one type; its first record says which)."""
        return [pack_id for pack_id, records in self._packs if records and records[32] == BLOB_TREE]

    def by_pack(self) -> dict[bytes, list[tuple[bytes, Location]]]:
        grouped: dict[bytes, list[tuple[bytes, Location]]] = {}
        for blob_id in self._blobs:
            loc = self.get(blob_id)
            grouped.setdefault(loc.pack_id, []).append((blob_id, loc))
        return grouped


def encode_index_file(packs: Iterable[PackInfo]) -> bytes:
    return msgpack.packb({
        "v": INDEX_VERSION,
        "packs": [{"id": p.pack_id, "size": p.size, "blobs": p.records}
                  for p in packs],
    })


def index_file_name(file_id: str) -> str:
    return f"index/{file_id}"


def write_index_file(storage: "Storage", packs: list[PackInfo], cipher: Cipher = PLAIN) -> tuple[str, int]:
    """Store an index file naming ``packs`` (sealed by ``cipher``); returns its id and size."""
    data = cipher.seal(encode_index_file(packs), INDEX)
    file_id = blake3.blake3(data).hexdigest()
    storage.put(index_file_name(file_id), data, create_only=True)
    return file_id, len(data)


def index_file_ids(storage: "Storage") -> list[str]:
    return sorted(info.name.rsplit("/", 1)[-1] for info in storage.list("index/"))


def prefer_present(packs: list, present: set[bytes] | None) -> list:
    """``packs`` (tuples starting with a pack id) with those whose file exists first.

    The first listing of a blob wins; a blob stored again after its pack was lost
    (a backup re-stores what a missing pack held) must resolve to the new copy.
    """
    if present is None:
        return packs
    return [p for p in packs if p[0] in present] + [p for p in packs if p[0] not in present]


class _Views:
    """A file-like reader of a buffer, for msgpack's Unpacker (which wants bytes)."""

    def __init__(self, data):
        self.data, self.pos = memoryview(data), 0

    def read(self, n: int) -> bytes:
        chunk = bytes(self.data[self.pos:self.pos + n])
        self.pos += len(chunk)
        return chunk


_BIN_HEADER = {0xC4: 2, 0xC5: 3, 0xC6: 5}  # msgpack bin 8/16/32: header length


def decode_index_file(file_id: str, data, views: bool = False, cipher: Cipher = PLAIN
                      ) -> list[tuple[bytes, int, bytes]]:
    """The (pack id, size, records) an index file lists; IntegrityError if it is not what its name says.

    With ``views``, each pack's records are a view into the plain bytes (for a plaintext
    repository a mapped file: a reader of a few records need not copy 13 MB of them); else bytes."""
    if blake3.blake3(data).hexdigest() != file_id:
        raise IntegrityError(f"index file {file_id} is corrupt (hash mismatch); run 'snapstore repair index'")
    data = cipher.open(data, INDEX, f"index file {file_id}")
    buf = memoryview(data)
    unpacker = msgpack.Unpacker(_Views(buf))
    packs, version = [], None
    try:
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key != "packs":
                value = unpacker.unpack()
                version = value if key == "v" else version
                continue
            for _ in range(unpacker.read_array_header()):
                pack: dict = {}
                for _ in range(unpacker.read_map_header()):
                    field = unpacker.unpack()
                    if field != "blobs":
                        pack[field] = unpacker.unpack()
                        continue
                    start = unpacker.tell()
                    unpacker.skip()
                    if buf[start] not in _BIN_HEADER:
                        raise ValueError("a pack's blob table is not binary")
                    records = buf[start + _BIN_HEADER[buf[start]]:unpacker.tell()]
                    pack[field] = records if views else bytes(records)
                packs.append((pack["id"], pack["size"], pack["blobs"]))
        if unpacker.tell() != len(buf):
            raise ValueError("extra data after the index")
        if version != INDEX_VERSION:
            raise IntegrityError(f"index file {file_id} has unknown version {version}")
        for pack_id, _size, records in packs:
            if len(records) % BLOB_RECORD.size:
                raise ValueError(f"pack {bytes(pack_id).hex()[:16]} has a truncated blob table")
        return packs
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, struct.error,
            msgpack.UnpackException) as exc:
        raise IntegrityError(f"index file {file_id} is unreadable: {exc}") from None


def read_index_files(storage: "Storage", read: Callable[[str], bytes] | None = None, views: bool = False,
                     cipher: Cipher = PLAIN) -> list[tuple[str, list[tuple[bytes, int, bytes]]]]:
    """Each index file's id with the (pack id, size, records) it lists (``decode_index_file``)."""
    read = read or storage.get
    return [(file_id, decode_index_file(file_id, read(index_file_name(file_id)), views, cipher))
            for file_id in index_file_ids(storage)]


def load_index(storage: "Storage", read: Callable[[str], bytes] | None = None,
               present: set[bytes] | None = None, cipher: Cipher = PLAIN) -> Index:
    """The union of all index files; ``read(name)`` fetches a file (the repository's cache).
    With ``present`` (the packs in the storage), listings in existing packs win over listings
    in missing ones, and ``missing_packs`` names the latter."""
    index = Index()
    files = read_index_files(storage, read, cipher=cipher)
    index.files = [file_id for file_id, _ in files]
    packs = prefer_present([pack for _, listed in files for pack in listed], present)
    if present is not None:
        index.missing_packs = {p[0] for p in packs} - present
    try:
        index.add_packs(packs)
    except ValueError as exc:
        raise IntegrityError(f"index is unreadable: {exc}; run 'snapstore repair index'") from None
    return index
