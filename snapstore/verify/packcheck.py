"""Checking one pack file: the unit of work of ``verify --full``.

A whole-pack check reads the file with one large read, hashes it against its
name, reads its trailer and compares it with what the index recorded, then
decompresses every payload (zstd's batch API, one call for the whole pack) and
re-hashes every blob.  The blob table used is the index's, since that is what
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

Record = tuple[bytes, int, int, int, int, int]  # id, type, codec, offset, stored length, plain length


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
    """Decompress and re-hash ``records`` whose payloads are in ``buf`` (which starts at pack offset ``base``)."""
    end = base + len(buf)
    mv = memoryview(buf)
    zstd: list[Record] = []
    for rec in records:
        blob_id, btype, codec, offset, slen, _plen = rec
        if offset < base or offset + slen > end:
            out.bad.append((blob_id, btype, "chunk-truncated"))
        elif codec == CODEC_ZSTD:
            zstd.append(rec)
        elif codec != CODEC_RAW or blake3.blake3(mv[offset - base:offset - base + slen]).digest() != blob_id:
            out.bad.append((blob_id, btype, "chunk-corrupt"))
    out.blobs += len(records)
    if zstd:
        _check_zstd(buf, base, zstd, out)


def _check_zstd(buf: bytearray, base: int, records: list[Record], out: PackOutcome) -> None:
    dctx = zstandard.ZstdDecompressor()
    try:
        segments = struct.pack(f"={2 * len(records)}Q", *[v for r in records for v in (r[3] - base, r[4])])
        sizes = struct.pack(f"={len(records)}Q", *[r[5] for r in records])
        plains = dctx.multi_decompress_to_buffer(zstandard.BufferWithSegments(buf, segments),
                                                 decompressed_sizes=sizes, threads=1)
    except zstandard.ZstdError:
        plains = None  # some frame is bad: find which, one by one
    hash_ = blake3.blake3
    if plains is not None:
        for i, rec in enumerate(records):
            if hash_(plains[i]).digest() != rec[0]:
                out.bad.append((rec[0], rec[1], "chunk-corrupt"))
        return
    mv = memoryview(buf)
    for blob_id, btype, _codec, offset, slen, plen in records:
        try:
            plain = dctx.decompress(mv[offset - base:offset - base + slen], max_output_size=plen)
        except zstandard.ZstdError:
            plain = None
        if plain is None or len(plain) != plen or hash_(plain).digest() != blob_id:
            out.bad.append((blob_id, btype, "chunk-corrupt"))


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
