"""Checking one pack file: the unit of work of ``verify --full``.

A whole-pack check reads the file with one large read, hashes it against its
name, reads its trailer and compares it with what the index recorded, then
decompresses every payload (zstd's batch API, one call for the whole pack) and
re-hashes every blob from its slice of its payload.  The blob table used is the index's, since that is what
restores read; a pack in no index file is checked against its own trailer.
A partial check (``verify ID``, ``backup --verify``) reads only the span holding
the blobs asked for and checks those.

Runs in a worker process: it takes and returns plain data (``PackTask`` /
``PackOutcome``) and never raises for damage, only reports it.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import zstandard

from ..errors import IntegrityError
from ..repository.pack import BLOB_RECORD, CODEC_RAW, CODEC_ZSTD, read_trailer

Record = tuple[bytes, int, int, int, int, int, int]  # id, type, codec, payload offset, stored len, plain len, inner


@dataclass
class PackTask:
    pack_id: bytes
    path: str
    records: bytes | None  # index records of this pack; None: not indexed, use the trailer
    size: int | None  # size the index records
    wanted: list[Record] | None = None  # partial check: only these blobs


@dataclass
class PackOutcome:
    pack_id: bytes
    bytes_read: int = 0
    blobs: int = 0
    bad: list[tuple[bytes, int, str]] = field(default_factory=list)  # blob id, type, kind
    problems: list[tuple[str, str]] = field(default_factory=list)  # pack-level (kind, detail)
    error: str | None = None  # the pack could not be read at all


def _read_span(path: str, start: int, end: int | None) -> bytearray:
    with open(path, "rb", buffering=0) as f:
        if end is None:
            end = os.fstat(f.fileno()).st_size
        buf = bytearray(max(0, end - start))
        f.seek(start)
        view, got = memoryview(buf), 0
        while got < len(buf):
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
        del view
        del buf[got:]
        return buf


def check_blobs(buf: bytearray, base: int, records: list[Record], out: PackOutcome) -> None:
    """Decompress and re-hash ``records`` whose payloads are in ``buf`` (which starts at pack offset ``base``).

    Several blobs may share one payload (a zstd frame of consecutive pages): each
    payload is decompressed once and every member is hashed from its slice.
    """
    end = base + len(buf)
    payloads: dict[tuple[int, int, int], list[Record]] = {}
    for rec in records:
        blob_id, btype, codec, offset, slen = rec[:5]
        if offset < base or offset + slen > end:
            out.bad.append((blob_id, btype, "chunk-truncated"))
        elif codec not in (CODEC_RAW, CODEC_ZSTD):
            out.bad.append((blob_id, btype, "chunk-corrupt"))
        else:
            payloads.setdefault((offset, slen, codec), []).append(rec)
    out.blobs += len(records)
    mv = memoryview(buf)
    zstd = []
    for key, members in payloads.items():
        if key[2] == CODEC_RAW:
            _hash_members(mv[key[0] - base:key[0] - base + key[1]], members, out)
        else:
            zstd.append((key, members))
    if zstd:
        for plain, (_key, members) in zip(_decompress(buf, base, [k for k, _ in zstd]), zstd):
            if plain is None:
                out.bad.extend((rec[0], rec[1], "chunk-corrupt") for rec in members)
            else:
                _hash_members(plain, members, out)


def _hash_members(plain, members: list[Record], out: PackOutcome) -> None:
    mv = memoryview(plain)
    hash_ = blake3.blake3
    for rec in members:
        blob_id, plen, inner = rec[0], rec[5], rec[6]
        if inner + plen > len(mv) or hash_(mv[inner:inner + plen]).digest() != blob_id:
            out.bad.append((blob_id, rec[1], "chunk-corrupt"))


def _decompress(buf: bytearray, base: int, frames: list[tuple[int, int, int]]) -> list:
    """The plain bytes of each zstd frame (None where it does not decompress); one batch call if all are good."""
    dctx = zstandard.ZstdDecompressor()
    try:
        segments = struct.pack(f"={2 * len(frames)}Q", *[v for off, slen, _ in frames for v in (off - base, slen)])
        plains = dctx.multi_decompress_to_buffer(zstandard.BufferWithSegments(buf, segments), threads=1)
        return [plains[i] for i in range(len(frames))]
    except zstandard.ZstdError:
        pass  # some frame is bad: find which, one by one
    mv = memoryview(buf)
    out = []
    for off, slen, _ in frames:
        try:
            out.append(dctx.decompress(mv[off - base:off - base + slen]))
        except zstandard.ZstdError:
            out.append(None)
    return out


def _check_whole(task: PackTask, out: PackOutcome) -> None:
    buf = _read_span(task.path, 0, None)
    out.bytes_read = len(buf)
    if blake3.blake3(buf).digest() != task.pack_id:
        out.problems.append(("pack-hash", ""))
    if task.size is not None and len(buf) != task.size:
        out.problems.append(("pack-size", f"{len(buf)} bytes, the index says {task.size}"))
    trailer: bytes | None = None
    try:
        trailer = b"".join(e.record() for e in read_trailer(Path(task.path)))
    except IntegrityError as exc:
        out.problems.append(("pack-trailer", str(exc).replace(f"pack {Path(task.path).name} ", "")))
    records = task.records if task.records is not None else trailer
    if trailer is not None and task.records is not None and trailer != task.records:
        out.problems.append(("pack-trailer", f"trailer lists {len(trailer) // BLOB_RECORD.size} blobs that "
                             f"disagree with the index's {len(task.records) // BLOB_RECORD.size}"))
    if records:
        check_blobs(buf, 0, list(BLOB_RECORD.iter_unpack(records)), out)


def check_pack(task: PackTask) -> PackOutcome:
    out = PackOutcome(task.pack_id)
    try:
        if task.wanted is None:
            _check_whole(task, out)
        else:
            start = min(r[3] for r in task.wanted)
            buf = _read_span(task.path, start, max(r[3] + r[4] for r in task.wanted))
            out.bytes_read = len(buf)
            check_blobs(buf, start, task.wanted, out)
    except FileNotFoundError:
        out.problems.append(("pack-missing", ""))
    except OSError as exc:
        out.error = exc.strerror or str(exc)
    return out
