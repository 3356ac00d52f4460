"""Blob locations for a command that reads a few thousand blobs of a large repository.

``Index`` (index.py) makes one bytes object and one dict entry per blob: ~0.1 s of
CPU for the ~250k chunks of a 1 GB agent, before the first blob is read.  A diff
of two days of that agent reads ~5k blobs.  ``PrefixLookup`` instead copies the
first 8 bytes of every record's id into one array with a few C-level strided
copies and keys a dict by those 64-bit integers; each hit is confirmed against
the full 32-byte id.  Ids sharing a prefix (the same blob listed twice, or a
crafted 64-bit collision) are resolved exactly, through a second dict of full ids.
"""
from __future__ import annotations

import bisect
import sys

from .index import Location
from .pack import BLOB_RECORD, BLOB_TREE

_PREFIX = 8


def _prefixes(records: bytes) -> list[int]:
    """The first 8 bytes of each record's id, as native integers."""
    step, n = BLOB_RECORD.size, len(records) // BLOB_RECORD.size
    column = bytearray(n * _PREFIX)
    for k in range(_PREFIX):
        column[k::_PREFIX] = records[k::step]
    return memoryview(column).cast("Q").tolist()


class PrefixLookup:
    """Read-only ``blob id -> Location`` over packs given as (pack id, size, records), the
    first listing of a blob winning (as in ``Index``)."""

    def __init__(self, packs: list[tuple[bytes, int, bytes]]):
        self._packs = [(pack_id, records) for pack_id, _size, records in packs]
        self._starts: list[int] = []
        keys: list[int] = []
        for _, records in self._packs:
            self._starts.append(len(keys))
            keys.extend(_prefixes(records))
        n = len(keys)
        # Built backwards so that, of equal prefixes, the first listing is the one kept.
        self._first = dict(zip(reversed(keys), range(n - 1, -1, -1)))
        self._shadowed: dict[bytes, int] = {}
        if len(self._first) < n:  # some prefix repeats: keep every full id it hides
            for number, key in enumerate(keys):
                if self._first[key] != number:
                    self._shadowed.setdefault(self._blob_id(number), number)

    def _record(self, number: int) -> tuple[bytes, bytes, int]:
        """(pack id, that pack's records, the record's offset in them)."""
        pack = bisect.bisect_right(self._starts, number) - 1
        pack_id, records = self._packs[pack]
        return pack_id, records, (number - self._starts[pack]) * BLOB_RECORD.size

    def _blob_id(self, number: int) -> bytes:
        _, records, at = self._record(number)
        return records[at:at + 32]

    def get(self, blob_id: bytes) -> Location | None:
        number = self._first.get(int.from_bytes(blob_id[:_PREFIX], sys.byteorder))
        if number is None or self._blob_id(number) != blob_id:
            number = self._shadowed.get(bytes(blob_id))
            if number is None:
                return None
        pack_id, records, at = self._record(number)
        _, btype, codec, offset, slen, plen, inner = BLOB_RECORD.unpack_from(records, at)
        return Location(pack_id, btype, codec, offset, slen, plen, inner)

    def __contains__(self, blob_id: bytes) -> bool:
        return self.get(blob_id) is not None

    def tree_pack_ids(self) -> list[bytes]:
        return [pack_id for pack_id, records in self._packs if records and records[32] == BLOB_TREE]
