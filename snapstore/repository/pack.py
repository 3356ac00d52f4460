"""Pack files: many compressed blobs in one file that describes its own contents.

Layout (all integers little-endian)::

    b"SNAPPK\\x00\\x01"                       8-byte magic + format version
    blob 0 payload, blob 1 payload, ...       zstd frames or raw bytes
    trailer                                   msgpack {"v": 1, "blobs": RECORDS}
    u32 trailer length
    b"SNAPPEND"                               end magic

``RECORDS`` is a byte string of fixed-width records (``BLOB_RECORD``): blob id,
blob type, codec, payload offset, stored length, plain length, inner offset.
A payload (one zstd frame or raw run) may hold several consecutive blobs:
4 KiB database pages compress ~10% better sixteen at a time, while each page
stays its own deduplicated blob.  A blob is then ``plain[inner:inner + plain
length]`` of its payload.  Because each
pack carries its own table, the index is a cache that can always be rebuilt
from the tails of the packs (``snapstore repair index``).  A pack's name is the
BLAKE3 of its bytes, so a pack file can be checked without the index.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import blake3
import msgpack

from ..atomic import AtomicFile
from ..errors import IntegrityError

PACK_MAGIC = b"SNAPPK\x00\x01"
END_MAGIC = b"SNAPPEND"
TAIL = struct.Struct("<I8s")
BLOB_RECORD = struct.Struct("<32sBBQIII")  # id, type, codec, payload offset, stored len, plain len, inner

BLOB_DATA = 0  # file content
BLOB_TREE = 1  # chunk lists and other metadata
CODEC_RAW = 0
CODEC_ZSTD = 1


Payload = tuple[int, bytes, list[tuple[bytes, int, int]]]  # codec, stored bytes, (id, plain len, inner)


@dataclass(frozen=True, slots=True)
class BlobEntry:
    blob_id: bytes
    blob_type: int
    codec: int
    offset: int
    stored_length: int
    plain_length: int
    inner: int = 0

    def record(self) -> bytes:
        return BLOB_RECORD.pack(self.blob_id, self.blob_type, self.codec, self.offset,
                                self.stored_length, self.plain_length, self.inner)


def iter_records(records: bytes) -> Iterator[BlobEntry]:
    for fields in BLOB_RECORD.iter_unpack(records):
        yield BlobEntry(*fields)


class PackWriter:
    """Appends blobs to a temporary file; ``finish`` names it by its hash."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._file = AtomicFile(data_dir / "pack")
        self._hasher = blake3.blake3()
        self._records = bytearray()
        self._write(PACK_MAGIC)

    def _write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._hasher.update(data)

    @property
    def size(self) -> int:
        return self._file.size

    def add_payloads(self, blob_type: int, payloads: list["Payload"]) -> None:
        """Append payloads with one write; each names the (id, plain length, inner) blobs it holds."""
        offset = self._file.size
        pack_record = BLOB_RECORD.pack
        for codec, data, members in payloads:
            for blob_id, plain, inner in members:
                self._records += pack_record(blob_id, blob_type, codec, offset, len(data), plain, inner)
            offset += len(data)
        self._write(b"".join(data for _, data, _ in payloads) if len(payloads) > 1 else payloads[0][1])

    def finish(self) -> tuple[bytes, int, bytes]:
        """Write the trailer, fsync and rename; returns (pack id, size, blob records)."""
        records = bytes(self._records)
        trailer = msgpack.packb({"v": 1, "blobs": records})
        self._write(trailer)
        self._write(TAIL.pack(len(trailer), END_MAGIC))
        pack_id = self._hasher.digest()
        self._file.commit(pack_path(self.data_dir, pack_id))
        return pack_id, self._file.size, records

    def abort(self) -> None:
        self._file.abort()


def pack_path(data_dir: Path, pack_id: bytes) -> Path:
    name = pack_id.hex()
    return data_dir / name[:2] / name


def read_trailer(path: Path) -> list[BlobEntry]:
    """The blob table of one pack, read from its tail only."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size < len(PACK_MAGIC) + TAIL.size:
            raise IntegrityError(f"pack {path.name} is truncated ({size} bytes)")
        f.seek(size - TAIL.size)
        trailer_len, magic = TAIL.unpack(f.read(TAIL.size))
        if magic != END_MAGIC or trailer_len > size - TAIL.size - len(PACK_MAGIC):
            raise IntegrityError(f"pack {path.name} has no valid trailer (truncated or overwritten)")
        f.seek(size - TAIL.size - trailer_len)
        try:
            trailer = msgpack.unpackb(f.read(trailer_len))
            entries = list(iter_records(trailer["blobs"]))
        except Exception as exc:  # msgpack raises several types on garbage
            raise IntegrityError(f"pack {path.name} has a corrupt trailer: {exc}") from None
    data_end = size - TAIL.size - trailer_len
    for e in entries:
        if e.offset < len(PACK_MAGIC) or e.offset + e.stored_length > data_end:
            raise IntegrityError(f"pack {path.name} trailer points outside the pack")
    return entries
