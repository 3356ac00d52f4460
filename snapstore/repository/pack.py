"""Pack files: many compressed blobs in one file that describes its own contents.

Layout (all integers little-endian)::

    b"SNAPPK\\x00\\x01"                       8-byte magic + format version (\\x02: encrypted)
    blob 0 payload, blob 1 payload, ...       zstd frames or raw bytes (v2: each sealed)
    trailer                                   msgpack {"v": 2, "ids": IDS, "rest": zstd(FIELDS)} (sealed
                                              in an encrypted repository); older packs {"v": 1, "blobs": RECORDS}
    u32 trailer length
    b"SNAPPEND"                               end magic

``RECORDS`` is a byte string of fixed-width records (``BLOB_RECORD``): blob id,
blob type, codec, payload offset, stored length, plain length, inner offset.
A v2 trailer stores the same records split in two columns: the 32-byte ids
(random: they do not compress) back to back, and the 22 bytes of fields after
each, which repeat from blob to blob, zstd-compressed: 37% smaller than v1.
Readers accept both; the index files keep whole records.
A payload (one zstd frame or raw run) may hold several consecutive blobs:
4 KiB database pages compress ~10% better sixteen at a time and ~15% better
64 at a time (ingest.py chooses), while each page stays its own deduplicated blob.  A blob is then ``plain[inner:inner + plain
length]`` of its payload.  Because each
pack carries its own table, the index is a cache that can always be rebuilt
from the tails of the packs (``snapstore repair index``).  A pack's name is the
BLAKE3 of its bytes, so a pack file can be checked without the index.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import blake3
import msgpack
import zstandard

from ..crypto.cipher import PLAIN, TRAILER, Cipher
from ..errors import IntegrityError

if TYPE_CHECKING:
    from ..storage import Storage

PACK_MAGIC = b"SNAPPK\x00\x01"
SEALED_PACK_MAGIC = b"SNAPPK\x00\x02"  # an encrypted repository's packs (same length)
END_MAGIC = b"SNAPPEND"
TAIL = struct.Struct("<I8s")
BLOB_RECORD = struct.Struct("<32sBBQIII")  # id, type, codec, payload offset, stored len, plain len, inner

BLOB_DATA = 0  # file content
BLOB_TREE = 1  # chunk lists and other metadata
CODEC_RAW = 0
CODEC_ZSTD = 1
ID_SIZE = 32
TRAILER_VERSION = 2  # 1: {"blobs": RECORDS}; 2: {"ids", "rest"} columns (read both)


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
    """Appends blobs to a staged object; ``finish`` stores it under its hash."""

    def __init__(self, storage: "Storage", blob_type: int = BLOB_DATA, cipher: Cipher = PLAIN):
        self._file = storage.stage("tree" if blob_type == BLOB_TREE else "data")
        self._hasher = blake3.blake3()
        self._records = bytearray()
        self._cipher = cipher
        self._write(SEALED_PACK_MAGIC if cipher.encrypted else PACK_MAGIC)

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
        """Write the trailer and commit; returns (pack id, size, blob records).

        On S3 the upload may still be running: ``Storage.flush`` waits for it."""
        records = bytes(self._records)
        trailer = self._cipher.seal(encode_trailer(records), TRAILER)
        self._write(trailer)
        self._write(TAIL.pack(len(trailer), END_MAGIC))
        pack_id = self._hasher.digest()
        self._file.commit(pack_name(pack_id))
        return pack_id, self._file.size, records

    def abort(self) -> None:
        self._file.abort()


def encode_trailer(records: bytes) -> bytes:
    """A pack's trailer (v2) holding ``records``: the ids, then the other fields compressed."""
    size = BLOB_RECORD.size
    ids = b"".join([records[i:i + ID_SIZE] for i in range(0, len(records), size)])
    rest = b"".join([records[i + ID_SIZE:i + size] for i in range(0, len(records), size)])
    return msgpack.packb({"v": TRAILER_VERSION, "ids": ids, "rest": zstandard.compress(rest, 3)})


def _trailer_records(doc: dict) -> bytes:
    """The blob records of a decoded v1 or v2 trailer; ValueError on anything malformed."""
    if doc.get("v") == 1:
        records = doc["blobs"]
    elif doc.get("v") == 2:
        ids = doc["ids"]
        rest_size = BLOB_RECORD.size - ID_SIZE
        count = len(ids) // ID_SIZE
        rest = zstandard.ZstdDecompressor().decompress(doc["rest"], max_output_size=count * rest_size)
        if not isinstance(ids, bytes) or len(ids) % ID_SIZE or len(rest) != count * rest_size:
            raise ValueError("blob ids and fields do not match")
        records = b"".join(map(bytes.__add__, [ids[i:i + ID_SIZE] for i in range(0, len(ids), ID_SIZE)],
                               [rest[i:i + rest_size] for i in range(0, len(rest), rest_size)]))
    else:
        raise ValueError(f"unknown trailer version {doc.get('v')!r}")
    if not isinstance(records, bytes) or len(records) % BLOB_RECORD.size:
        raise ValueError("blob records have the wrong length")
    return records


def pack_name(pack_id: bytes) -> str:
    """The object name of a pack: ``data/<first two hex digits>/<hex id>``."""
    name = pack_id.hex()
    return f"data/{name[:2]}/{name}"


def pack_id_of(name: str) -> bytes | None:
    """The id a ``data/ab/<hex>`` object name stands for, or None for a stray name."""
    parts = name.split("/")
    try:
        pack_id = bytes.fromhex(parts[-1])
    except ValueError:
        return None
    if len(parts) != 3 or len(pack_id) != 32 or parts[1] != parts[2][:2]:
        return None
    return pack_id


TAIL_GUESS = 64 * 1024  # one read of a pack's end holds the trailer of all but the largest packs


def trailer_length(buf: bytes | memoryview, size: int) -> int:
    """The trailer length recorded in the last TAIL.size bytes of ``buf`` (which ends the pack of ``size`` bytes)."""
    if size < len(PACK_MAGIC) + TAIL.size:
        raise IntegrityError(f"is truncated ({size} bytes)")
    trailer_len, magic = TAIL.unpack_from(buf, len(buf) - TAIL.size)
    if magic != END_MAGIC or trailer_len > size - TAIL.size - len(PACK_MAGIC):
        raise IntegrityError("has no valid trailer (truncated or overwritten)")
    return trailer_len


def decode_trailer(buf: bytes | memoryview, size: int, cipher: Cipher = PLAIN) -> bytes:
    """The blob records of a pack from ``buf``, its last bytes (holding at least the whole trailer).

    The one trailer parser: ``read_trailer`` and verify's pack check both use it.
    Raises IntegrityError (message without the pack's name) on anything malformed.
    """
    trailer_len = trailer_length(buf, size)
    end = len(buf) - TAIL.size
    if trailer_len > end:
        raise ValueError("the buffer does not hold the whole trailer")
    trailer = cipher.open(buf[end - trailer_len:end], TRAILER, "trailer")
    try:
        records = _trailer_records(msgpack.unpackb(trailer))
    except Exception as exc:  # msgpack and zstd raise several types on garbage
        raise IntegrityError(f"has a corrupt trailer: {exc}") from None
    data_end = size - TAIL.size - trailer_len
    for e in BLOB_RECORD.iter_unpack(records):
        if e[3] < len(PACK_MAGIC) or e[3] + e[4] > data_end:
            raise IntegrityError("trailer points outside the pack")
    return records


def read_trailer(storage: "Storage", name: str, size: int | None = None, cipher: Cipher = PLAIN) -> list[BlobEntry]:
    """The blob table of one pack, read from its tail only (one range read, two for huge tables)."""
    if size is None:
        size = storage.stat(name).size
    try:
        start = max(0, size - TAIL_GUESS)
        tail = storage.get(name, start, size - start)
        if len(tail) != size - start:
            raise IntegrityError(f"is shorter than its listed {size} bytes")
        need = trailer_length(tail, size) + TAIL.size
        if need > len(tail):
            tail = storage.get(name, size - need, need)
        return list(iter_records(decode_trailer(tail, size, cipher)))
    except IntegrityError as exc:
        raise IntegrityError(f"pack {name.rsplit('/', 1)[-1][:16]} {exc}") from None


def trailer_records(storage: "Storage", name: str, size: int | None = None, cipher: Cipher = PLAIN) -> bytes:
    """A pack's blob table as index records: how a pack no index file names is indexed (repair, prune)."""
    return b"".join(entry.record() for entry in read_trailer(storage, name, size, cipher))
