"""Cutting content into chunks and storing the new ones.

Two chunkers, chosen by what the content is (measured in docs/design.md):

* ``fixed-<page size>`` for database files: SQLite updates pages in place, so
  chunks aligned to its pages keep ~98% of a changed database deduplicated
  where any content-defined chunker loses most of it.
* ``fastcdc-16k`` (pyfastcdc, min 4 KiB / avg 16 KiB / max 64 KiB) for streams
  such as configs, logs and SQL dumps, where inserts shift bytes.

Page hashing, compression and (encrypted repositories) sealing run in a small
pool of forked worker processes (BLAKE3 and zstd on 4 KiB inputs hold the GIL),
each over a contiguous range of pages; the parent keeps the index and writes packs in page order, and never
touches the database file itself (see sources/sqlite.py on POSIX locks).
"""
from __future__ import annotations

import io
import multiprocessing
import os
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator

import zstandard
from pyfastcdc import FastCDC

from .crypto.cipher import PAYLOAD, PLAIN, Cipher
from .repository import BLOB_DATA, BlobWriter
from .repository.index import Index
from .repository.pack import CODEC_RAW, CODEC_ZSTD
from .sources.sqlite import PageImage
from .workers import start_pool

PAGES_PER_TASK = 8192  # 32 MiB of 4 KiB pages per worker task
Progress = Callable[[int], None]

_worker_known: "Index | None" = None
_worker_level = 3
_worker_cipher: Cipher = PLAIN


@dataclass
class IngestResult:
    """A stored file's chunk ids and size (what it added is counted by the writer's stats)."""

    ids: bytes
    size: int


GROUP_PAGES = 16  # new pages compressed together: ~10% smaller than one by one
LOOKUP_PAGES = 1024  # pages whose ids go to the index in one vectorised lookup
ScanResult = tuple[bytes, list[tuple[int, bytes, list[tuple[bytes, int]]]]]


def _scan_range(task: tuple[PageImage, int, int]) -> ScanResult:
    """Worker: hash pages; compress the ones the index does not know (looked up
    ``LOOKUP_PAGES`` at a time), in groups."""
    image, first, count = task
    psize = image.page_size
    compress = zstandard.ZstdCompressor(level=_worker_level).compress
    cipher = _worker_cipher
    blob_id = cipher.blob_id
    known = _worker_known
    ids = bytearray()
    payloads: list[tuple[int, bytes, list[tuple[bytes, int]]]] = []
    group: list[bytes] = []
    members: list[tuple[bytes, int]] = []
    seen: set[bytes] = set()

    def flush() -> None:
        plain = b"".join(group)
        packed = compress(plain)
        codec, stored = (CODEC_ZSTD, packed) if len(packed) < len(plain) else (CODEC_RAW, plain)
        payloads.append((codec, cipher.seal(stored, PAYLOAD), list(members)))
        group.clear()
        members.clear()

    def scan(batch: list) -> None:
        """Hash a batch of pages, look their ids up at once, group the new ones."""
        hashes = [blob_id(page) for page in batch]
        packed = b"".join(hashes)
        ids.extend(packed)
        unknown = known.missing_mask(packed).tolist() if known else [True] * len(batch)
        for n, page in enumerate(batch):
            if not unknown[n]:
                continue
            chunk_id = hashes[n]
            if chunk_id in seen:
                continue
            seen.add(chunk_id)
            group.append(bytes(page))
            members.append((chunk_id, psize))
            if len(group) == GROUP_PAGES:
                flush()

    batch: list = []
    for page in image.pages(first, count):  # views into the map: used before the pass ends
        batch.append(page)
        if len(batch) == LOOKUP_PAGES:
            scan(batch)
            batch.clear()
    if batch:
        scan(batch)
    if group:
        flush()
    return bytes(ids), payloads


def _init_worker(known, level: int, cipher: Cipher) -> None:
    global _worker_known, _worker_level, _worker_cipher
    _worker_known, _worker_level, _worker_cipher = known, level, cipher


def ingest_pages(image: PageImage, writer: BlobWriter, progress: Progress | None = None,
                 workers: int | None = None) -> IngestResult:
    """Store a database image as fixed page-size chunks; returns its id list."""
    tasks = [(image, first, min(PAGES_PER_TASK, image.page_count - first))
             for first in range(0, image.page_count, PAGES_PER_TASK)]
    workers = max(1, workers or min(len(tasks), os.cpu_count() or 1, 4))
    ids = bytearray()
    level = writer.repo.config.compression_level

    def store(result: ScanResult) -> None:
        chunk_ids, payloads = result
        ids.extend(chunk_ids)
        writer.add_payloads(BLOB_DATA, payloads, sealed=True)
        if progress:
            progress(len(chunk_ids) // 32 * image.page_size)

    # Always in forked workers, even just one: this process holds the source's SQLite
    # locks, which opening and closing the file here would silently drop.
    ctx = multiprocessing.get_context("fork")
    with start_pool(ctx, workers, _init_worker, (writer.index, level, writer.repo.cipher)) as pool:
        for result in pool.imap(_scan_range, tasks):
            store(result)
    return IngestResult(bytes(ids), image.size)


def cdc_chunker(writer: BlobWriter) -> FastCDC:
    cfg = writer.repo.config
    return FastCDC(avg_size=cfg.cdc_avg, min_size=cfg.cdc_min, max_size=cfg.cdc_max)


def iter_cdc_chunks(stream: BinaryIO, chunker: FastCDC) -> Iterator[bytes]:
    for chunk in chunker.cut_stream(stream):
        yield bytes(chunk.data)


def ingest_chunks(chunks: Iterable[bytes], writer: BlobWriter, progress: Progress | None = None) -> IngestResult:
    """Store chunks cut by any chunker; returns their id list.  (Compressing new chunks in
    groups, as new pages are, saved 0.4% on a PostgreSQL 1% day: not done.)"""
    ids = bytearray()
    size = 0
    blob_id = writer.repo.cipher.blob_id
    for data in chunks:
        chunk_id = blob_id(data)
        ids += chunk_id
        size += len(data)
        writer.add(chunk_id, data)
        if progress:
            progress(len(data))
    return IngestResult(bytes(ids), size)


def ingest_stream(stream: BinaryIO, writer: BlobWriter, progress: Progress | None = None) -> IngestResult:
    """Store a byte stream as content-defined chunks."""
    return ingest_chunks(iter_cdc_chunks(stream, cdc_chunker(writer)), writer, progress)


def ingest_bytes(data: bytes, writer: BlobWriter) -> IngestResult:
    return ingest_stream(io.BytesIO(data), writer)
