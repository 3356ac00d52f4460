"""Blob locations for a command that reads a few thousand blobs of a large repository.

``Index`` (index.py) makes one bytes object and one dict entry per blob: ~0.1 s of
CPU for the ~250k chunks of a 1 GB agent before the first blob is read, while a
diff of two days of that agent reads ~5k blobs.  ``SortedLookup`` bisects instead:
per index file, the first 8 bytes of every blob id as a sorted array of integers
(and each one's record number).  Index files never change once written, so that
table is kept in the local cache under the file's id (``lookup/<repo id>/``) and
built only for files not seen before: after a backup, only its new index file.
Every hit is confirmed against the full 32-byte id in the index file's records.
"""
from __future__ import annotations

import array
import bisect
import mmap
import operator
import os
import struct
import sys
from pathlib import Path
from typing import Iterator

import blake3

from ..atomic import make_dirs, write_atomic
from .index import Location
from .pack import BLOB_RECORD, BLOB_TREE

_PREFIX = 8
_MAGIC = b"snapstore-lookup-1\n"
_HEADER = struct.Struct("<I32s")  # entries, BLAKE3 of the arrays


def _prefixes(records: bytes) -> array.array:
    """The first 8 bytes of each record's id, as native integers (a few strided copies, no loop)."""
    step, n = BLOB_RECORD.size, len(records) // BLOB_RECORD.size
    column = bytearray(n * _PREFIX)
    for k in range(_PREFIX):
        column[k::_PREFIX] = records[k::step]
    return array.array("Q", bytes(column))


class _FileTable:
    """One index file: its packs' records end to end, and their id prefixes sorted."""

    def __init__(self, packs: list[tuple[bytes, int, bytes]], table: "bytes | mmap.mmap | None"):
        self.packs = [(pack_id, records) for pack_id, _size, records in packs]
        self.starts, total = [], 0
        for _, records in self.packs:
            self.starts.append(total)
            total += len(records) // BLOB_RECORD.size
        self.table = table if table is not None and self._valid(table, total) else self._build(total)
        self.n = n = total
        self.keys = memoryview(self.table)[len(_MAGIC) + _HEADER.size:][:8 * n].cast("Q")
        self.numbers = memoryview(self.table)[len(_MAGIC) + _HEADER.size + 8 * n:].cast("I")
        self.built = table is not self.table

    @staticmethod
    def _valid(table: "bytes | mmap.mmap", n: int) -> bool:
        head = len(_MAGIC) + _HEADER.size
        if table[:len(_MAGIC)] != _MAGIC or len(table) != head + 12 * n:
            return False
        count, digest = _HEADER.unpack_from(table, len(_MAGIC))
        return count == n and blake3.blake3(memoryview(table)[head:]).digest() == digest

    def _build(self, n: int) -> bytes:
        keys = array.array("Q")
        for _, records in self.packs:
            keys.extend(_prefixes(bytes(records)))  # records may be a view (strided slices need bytes)
        order = sorted(range(n), key=keys.__getitem__)
        pick = operator.itemgetter(*order) if n > 1 else (lambda seq: tuple(seq[i] for i in order))
        body = array.array("Q", pick(keys)).tobytes() + array.array("I", order).tobytes()
        return _MAGIC + _HEADER.pack(n, blake3.blake3(body).digest()) + body

    def listings(self, blob_id: bytes, key: int) -> Iterator[tuple[bytes, bytes, int]]:
        """(pack id, records, offset) of each listing of ``blob_id`` in this file, in listing order
        (the sort is stable: equal prefixes keep their record order)."""
        keys, i = self.keys, bisect.bisect_left(self.keys, key)
        while i < self.n and keys[i] == key:
            number = self.numbers[i]
            pack = bisect.bisect_right(self.starts, number) - 1
            pack_id, records = self.packs[pack]
            at = (number - self.starts[pack]) * BLOB_RECORD.size
            if records[at:at + 32] == blob_id:
                yield pack_id, records, at
            i += 1


class SortedLookup:
    """Read-only ``blob id -> Location`` over index files given as (file id, packs), with
    ``Index``'s rule: the first listing wins, listings in packs that exist (``present``) first."""

    def __init__(self, files: list[tuple[str, list[tuple[bytes, int, bytes]]]], present: set[bytes] | None = None,
                 cache_dir: Path | None = None):
        self._present = present
        self._files = []
        for file_id, packs in files:
            path = cache_dir / file_id if cache_dir is not None else None
            table = _mapped(path) if path is not None else None
            ft = _FileTable(packs, table)
            if ft.built and path is not None:
                try:
                    make_dirs(cache_dir)
                    write_atomic(path, ft.table, overwrite=True)
                except OSError:
                    pass  # a cache that cannot be written only costs the next run a rebuild
            self._files.append(ft)
        if cache_dir is not None:
            _forget_stale(cache_dir, {file_id for file_id, _ in files})

    def get(self, blob_id: bytes) -> Location | None:
        blob_id = bytes(blob_id)
        key = int.from_bytes(blob_id[:_PREFIX], sys.byteorder)
        first = None
        for ft in self._files:
            for pack_id, records, at in ft.listings(blob_id, key):
                if self._present is None or pack_id in self._present:
                    return _location(pack_id, records, at)
                first = first or (pack_id, records, at)
        return _location(*first) if first else None

    def __contains__(self, blob_id: bytes) -> bool:
        return self.get(blob_id) is not None

    def locations(self, packed: bytes) -> list[Location | None]:
        """``get`` of each id of a packed id list (``Index.locations``' interface)."""
        return [self.get(packed[i:i + 32]) for i in range(0, len(packed), 32)]

    def tree_pack_ids(self) -> list[bytes]:
        return [pack_id for ft in self._files for pack_id, records in ft.packs if records and records[32] == BLOB_TREE]


def _mapped(path: Path) -> "mmap.mmap | None":
    """A cached table, mapped (read once, no fresh memory); None if absent or unreadable."""
    try:
        with open(path, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # ValueError: an empty file
        return None


def _location(pack_id: bytes, records: bytes, at: int) -> Location:
    _, btype, codec, offset, slen, plen, inner = BLOB_RECORD.unpack_from(records, at)
    return Location(pack_id, btype, codec, offset, slen, plen, inner)


def _forget_stale(cache_dir: Path, keep: set[str]) -> None:
    """Tables of index files that are gone (a prune or repair replaced them)."""
    try:
        names = os.listdir(cache_dir)
    except OSError:
        return
    for name in names:
        if name not in keep and len(name) == 64:
            try:
                os.unlink(cache_dir / name)
            except OSError:
                pass
