"""Checking a pack file, or a range of its blobs: the units of work of ``verify --full``.

A pack-level check reads the file with one large read, hashes it against its
name, reads its trailer and compares it with what the index recorded.  A blob
check reads the span holding some blobs (one large read), decompresses their
payloads (zstd's batch API, one call for the span) and re-hashes every blob from
its slice of its payload.  A small pack is one task doing both; a 32 MiB pack
(about 150 MB of pages) is split into a pack-level task and several blob
ranges so that all cores share it.  The blob table used is the index's, since
that is what restores read; a pack in no index file is checked against its own
trailer.

Runs in a worker process: it takes and returns plain data (``PackTask`` /
``PackOutcome``) and never raises for damage, only reports it.  Packs are read
through the repository's storage, set by ``use_storage`` before the workers
fork (a forked S3 worker makes its own client on first use), with the
repository's cipher (an encrypted repository's payloads are opened first; one
that fails authentication is a corrupt chunk).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import blake3
import zstandard

from ..crypto.cipher import PAYLOAD, PLAIN, AuthenticationFailed, Cipher
from ..errors import IntegrityError
from ..repository.blob import check_blob
from ..repository.pack import BLOB_RECORD, CODEC_RAW, CODEC_ZSTD, PACK_MAGIC, SEALED_PACK_MAGIC, decode_trailer
from ..storage import ObjectNotFound, Storage, StorageError

Record = tuple[bytes, int, int, int, int, int, int]  # id, type, codec, payload offset, stored len, plain len, inner


@dataclass
class PackTask:
    pack_id: bytes
    name: str  # the pack's object name
    records: bytes | None  # index records of this pack; None: not indexed, use the trailer
    size: int | None  # size the index records
    wanted: bytes | None = None  # check only these blobs (records), no pack-level check
    blobs: bool = True  # with wanted None: also check every blob of the pack


@dataclass
class PackOutcome:
    pack_id: bytes
    bytes_read: int = 0
    blobs: int = 0
    bad: list[tuple[bytes, int, str]] = field(default_factory=list)  # blob id, type, kind
    problems: list[tuple[str, str]] = field(default_factory=list)  # pack-level (kind, detail)
    error: str | None = None  # the pack could not be read at all


_storage: Storage | None = None  # set by use_storage; inherited by forked workers
_cipher: Cipher = PLAIN


def use_storage(storage: Storage, cipher: Cipher = PLAIN) -> None:
    global _storage, _cipher
    _storage, _cipher = storage, cipher


def _read_span(name: str, start: int, end: int | None) -> bytes:
    """Bytes [start, end) of a pack (to its end if None) in one read; shorter if the object is."""
    return _storage.get(name, start, None if end is None else max(0, end - start))


def check_blobs(buf: bytes, base: int, records: list[Record], out: PackOutcome, cipher: Cipher) -> None:
    """Decompress and re-hash ``records`` whose payloads are in ``buf`` (which starts at pack offset ``base``).

    Several blobs may share one payload (a zstd frame of consecutive pages): each
    payload is opened (encrypted repositories) and decompressed once, and every
    member is hashed from its slice.
    """
    end = base + len(buf)
    payloads: dict[tuple[int, int, int], list[Record]] = {}
    key: tuple[int, int, int] | None = None
    members: list[Record] = []
    for rec in records:  # records of one payload are consecutive: group without a lookup per blob
        if key is None or rec[3] != key[0] or rec[4] != key[1] or rec[2] != key[2]:
            key = (rec[3], rec[4], rec[2])
            members = payloads.setdefault(key, [])
        members.append(rec)
    out.blobs += len(records)
    mv = memoryview(buf)
    zstd: list[tuple[int, int, list[Record]]] = []  # (offset in zbuf, length, members) of each frame
    opened: list[bytes] = []  # encrypted: the opened zstd frames, laid end to end as zbuf
    zpos = 0
    for (offset, slen, codec), members in payloads.items():
        if offset < base or offset + slen > end:
            out.bad.extend((rec[0], rec[1], "chunk-truncated") for rec in members)
            continue
        if codec not in (CODEC_RAW, CODEC_ZSTD):
            out.bad.extend((rec[0], rec[1], "chunk-corrupt") for rec in members)
            continue
        payload = mv[offset - base:offset - base + slen]
        if cipher.encrypted:
            try:
                payload = cipher.open(payload, PAYLOAD, "payload")
            except AuthenticationFailed:
                out.bad.extend((rec[0], rec[1], "chunk-corrupt") for rec in members)
                continue
        if codec == CODEC_RAW:
            _hash_members(payload, members, out, cipher)
        elif cipher.encrypted:
            opened.append(payload)
            zstd.append((zpos, len(payload), members))
            zpos += len(payload)
        else:
            zstd.append((offset - base, slen, members))
    if zstd:
        zbuf = b"".join(opened) if cipher.encrypted else buf
        for plain, (_off, _len, members) in zip(_decompress(zbuf, [(o, n) for o, n, _ in zstd]), zstd):
            if plain is None:
                out.bad.extend((rec[0], rec[1], "chunk-corrupt") for rec in members)
            else:
                _hash_members(plain, members, out, cipher)


def _hash_members(plain, members: list[Record], out: PackOutcome, cipher: Cipher) -> None:
    for rec in members:
        if check_blob(cipher, rec[0], plain, rec[6], rec[5]) is None:
            out.bad.append((rec[0], rec[1], "chunk-corrupt"))


def _decompress(buf: bytes, frames: list[tuple[int, int]]) -> list:
    """The plain bytes of each zstd frame (offset and length in ``buf``; None where it does not
    decompress); one batch call if all are good."""
    dctx = zstandard.ZstdDecompressor()
    try:
        segments = struct.pack(f"={2 * len(frames)}Q", *[v for off, slen in frames for v in (off, slen)])
        plains = dctx.multi_decompress_to_buffer(zstandard.BufferWithSegments(buf, segments), threads=1)
        return [plains[i] for i in range(len(frames))]
    except zstandard.ZstdError:
        pass  # some frame is bad: find which, one by one
    mv = memoryview(buf)
    out = []
    for off, slen in frames:
        try:  # a decompressobj also reads frames that do not record their size
            out.append(dctx.decompressobj().decompress(mv[off:off + slen]))
        except zstandard.ZstdError:
            out.append(None)
    return out


def trailer_records(buf: bytes, cipher: Cipher) -> bytes:
    """The blob records of a pack's own trailer, read from the whole pack in ``buf``."""
    if buf[:len(PACK_MAGIC)] != (SEALED_PACK_MAGIC if cipher.encrypted else PACK_MAGIC):
        raise IntegrityError(f"is truncated or has no pack header ({len(buf)} bytes)")
    return decode_trailer(buf, len(buf), cipher)


def _check_whole(task: PackTask, out: PackOutcome) -> None:
    buf = _read_span(task.name, 0, None)
    out.bytes_read = len(buf)
    if blake3.blake3(buf).digest() != task.pack_id:
        out.problems.append(("pack-hash", ""))
    if task.size is not None and len(buf) != task.size:
        out.problems.append(("pack-size", f"{len(buf)} bytes, the index says {task.size}"))
    trailer: bytes | None = None
    try:
        trailer = trailer_records(buf, _cipher)
    except IntegrityError as exc:
        out.problems.append(("pack-trailer", str(exc)))
    records = task.records if task.records is not None else trailer
    if trailer is not None and task.records is not None and trailer != task.records:
        out.problems.append(("pack-trailer", f"trailer lists {len(trailer) // BLOB_RECORD.size} blobs that "
                             f"disagree with the index's {len(task.records) // BLOB_RECORD.size}"))
    if records and task.blobs:
        check_blobs(buf, 0, list(BLOB_RECORD.iter_unpack(records)), out, _cipher)


def check_pack(task: PackTask) -> PackOutcome:
    out = PackOutcome(task.pack_id)
    try:
        if task.wanted is None:
            _check_whole(task, out)
        else:
            records = list(BLOB_RECORD.iter_unpack(task.wanted))
            start = min(r[3] for r in records)
            buf = _read_span(task.name, start, max(r[3] + r[4] for r in records))
            out.bytes_read = len(buf)
            check_blobs(buf, start, records, out, _cipher)
    except ObjectNotFound:
        out.problems.append(("pack-missing", ""))
    except StorageError as exc:
        out.error = str(exc)
    except OSError as exc:
        out.error = exc.strerror or str(exc)
    return out
