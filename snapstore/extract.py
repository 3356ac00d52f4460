"""Reading a snapshot's files back: the primitive under dump, export and restore."""
from __future__ import annotations

import errno
import mmap
import multiprocessing
import os
from collections import deque
from contextlib import closing
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from .chunklist import load_list
from .errors import IntegrityError, MissingChunk
from .manifest import FileEntry, content_digest
from .repository import Repository
from .workers import start_pool


def _checked_ids(reader, entry: FileEntry) -> bytes:
    """The file's chunk ids, their list checked against the manifest's digest."""
    ids = load_list(entry.chunks, reader)
    if content_digest(ids) != entry.digest:
        raise IntegrityError(f"chunk list of {entry.path} does not match the manifest's digest")
    return ids


PIECE_BYTES = 16 * 1024 * 1024  # dump and in-process readers take a file in pieces of about this size


def iter_file_pieces(repo: Repository, entry: FileEntry, payloads: dict | None = None) -> Iterator[memoryview]:
    """The file's bytes in order, in pieces of about ``PIECE_BYTES`` (a larger chunk is a piece
    alone), every chunk hash-checked.  Each piece is read as a restore task is (``read_into``:
    on S3, pack ranges sorted and fetched in parallel) into one buffer reused for the next, so
    memory does not grow with the file; a piece is valid until the next is taken.  ``payloads``
    collects the repository payloads read, (pack, offset) -> stored bytes."""
    with repo.reader() as reader:
        ids = _checked_ids(reader, entry)
        yield from _read_pieces(reader, entry, ids, _piece_bounds(repo, entry, ids), payloads)


def _read_pieces(reader, entry: FileEntry, ids: bytes, bounds: list[tuple[int, int, int]],
                 payloads: dict | None = None) -> Iterator[memoryview]:
    count = len(ids) // 32
    buf = bytearray()
    for lo, hi, size in bounds:
        if len(buf) < size:
            buf = bytearray(size)
        piece = memoryview(buf)[:size]
        if reader.read_into(piece, ids[lo * 32:hi * 32], payloads) != size:
            raise IntegrityError(f"{entry.path}: chunks {lo}..{hi} of {count} do not hold the bytes the index says")
        yield piece


def _piece_bounds(repo: Repository, entry: FileEntry, ids: bytes,
                  piece_bytes: int | None = None) -> list[tuple[int, int, int]]:
    """(first chunk, end chunk, bytes) of each piece (of about ``piece_bytes``, default
    ``PIECE_BYTES``): arithmetic for page chunks, else from the index."""
    count = len(ids) // 32
    piece_bytes = piece_bytes or PIECE_BYTES
    if entry.chunker.startswith("fixed-"):
        size = int(entry.chunker.split("-", 1)[1])
        step = max(1, piece_bytes // size)
        return [(lo, min(lo + step, count), min((lo + step) * size, entry.size) - lo * size)
                for lo in range(0, count, step)]
    index, bounds, lo, size = repo.index, [], 0, 0
    for at in range(count):
        blob_id = ids[at * 32:(at + 1) * 32]
        loc = index.get(blob_id)
        if loc is None:
            raise MissingChunk(f"{entry.path}: chunk {blob_id.hex()[:16]} is not in the index")
        if at > lo and size + loc.plain_length > piece_bytes:
            bounds.append((lo, at, size))
            lo, size = at, 0
        size += loc.plain_length
    if count:
        bounds.append((lo, count, size))
    return bounds


def iter_file_chunks(repo: Repository, entry: FileEntry, payloads: dict | None = None) -> Iterator[bytes]:
    """The file's bytes in order, in blocks a caller may keep.  Locally, run by run in ~1 MiB
    blocks (``iter_plain``: one copy); remotely, in pieces read as a restore reads them
    (parallel ranged GETs), since there a request costs far more than a copy.  ``payloads``
    collects the repository payloads read, (pack, offset) -> stored bytes."""
    if repo.storage.is_local:
        with repo.reader() as reader:
            ids = _checked_ids(reader, entry)
            yield from reader.iter_plain(ids, payloads=payloads)
        return
    for piece in iter_file_pieces(repo, entry, payloads):
        yield bytes(piece)


def write_file(repo: Repository, entry: FileEntry, out: BinaryIO,
               progress: Callable[[int], None] | None = None, workers: int | None = None) -> int:
    """Write one file of a snapshot to ``out``; every chunk is hash-checked on the way.

    From a remote repository, a file of more than one piece is decoded by forked workers
    (``_decode_pieces``), ``out`` written in order by this process, so it may be a pipe;
    ``workers=1`` (the default for a local repository) reads it here, piece by piece."""
    written = 0
    with repo.reader() as reader:
        ids = _checked_ids(reader, entry)
        bounds = _piece_bounds(repo, entry, ids)
        # Local repositories stay in this process: measured at scale 50 (docs/benchmarks.md, S3),
        # workers cost CPU there without a steady gain in wall time.
        workers = workers or (1 if repo.storage.is_local else min(len(bounds), os.cpu_count() or 1, 4))
        if workers > 1:  # half-size pieces: 2 x workers of them are in memory at once, not one
            pieces = _decode_pieces(repo, entry, ids, _piece_bounds(repo, entry, ids, PIECE_BYTES // 2), workers)
        else:
            pieces = _read_pieces(reader, entry, ids, bounds)
        with closing(pieces):  # a failed write (a closed pipe) stops the workers now, not when the traceback goes
            for piece in pieces:
                out.write(piece)
                written += len(piece)
                if progress:
                    progress(len(piece))
    if written != entry.size:
        raise IntegrityError(f"{entry.path}: read {written} bytes, manifest says {entry.size}")
    return written


_pieces: tuple | None = None  # (repo, ids, slots) inherited by forked piece decoders


def _decode_piece(task: tuple[int, int, int, int]) -> int:
    """Worker: decode chunks [lo, hi) into shared slot ``slot``; returns the bytes written."""
    repo, ids, slots, slot_bytes = _pieces
    slot, lo, hi, size = task
    view = memoryview(slots)[slot * slot_bytes:slot * slot_bytes + size]
    try:
        with repo.reader() as reader:
            return reader.read_into(view, ids[lo * 32:hi * 32])
    finally:
        view.release()


def _decode_pieces(repo: Repository, entry: FileEntry, ids: bytes, bounds: list[tuple[int, int, int]],
                   workers: int) -> Iterator[memoryview]:
    """``iter_file_pieces`` with the decoding in forked workers: a restore is CPU-bound on
    decompressing and hash-checking 4 KiB pages in Python, one core's worth in one process.

    Each worker decodes a piece into one of ``2 x workers`` slots of a shared anonymous map
    (made before the fork, so every worker writes into the same memory); pieces come back
    in file order, and a slot is handed out again only once its piece has been taken, so
    memory is the slots whatever the file's size.  A worker's error (a damaged chunk, a
    missing pack) is raised here in its piece's turn, naming the chunk as the reader does."""
    global _pieces
    count = len(ids) // 32
    slot_bytes = max(size for _, _, size in bounds)
    nslots = min(len(bounds), 2 * workers)
    slots = mmap.mmap(-1, slot_bytes * nslots, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    _pieces = (repo, ids, slots, slot_bytes)
    pool = None
    try:
        pool = start_pool(multiprocessing.get_context("fork"), workers)
        pending: deque = deque()
        todo = iter(bounds)
        for slot in range(nslots):
            lo, hi, size = next(todo)
            pending.append((pool.apply_async(_decode_piece, ((slot, lo, hi, size),)), slot, lo, hi, size))
        while pending:
            result, slot, lo, hi, size = pending.popleft()
            if result.get() != size:
                raise IntegrityError(f"{entry.path}: chunks {lo}..{hi} of {count} do not hold the bytes the index says")
            piece = memoryview(slots)[slot * slot_bytes:slot * slot_bytes + size]
            try:
                yield piece
            finally:
                piece.release()
            following = next(todo, None)
            if following is not None:
                lo, hi, size = following
                pending.append((pool.apply_async(_decode_piece, ((slot, lo, hi, size),)), slot, lo, hi, size))
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _pieces = None
        slots.close()


RESTORE_TASK_CHUNKS = 8192
DIRECT_ALIGN = 4096
_job: tuple | None = None  # (repo, ids, path, direct) inherited by forked workers
_scratch: mmap.mmap | None = None  # one worker's output buffer (page-aligned), reused from task to task
_reader = None  # one worker's BlobReader, kept from task to task (remote: small payloads several tasks want)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    """pwrite may write less than asked (a full disk, a signal): go on until all is written."""
    while data:
        n = os.pwrite(fd, data, offset)
        if n <= 0:
            raise OSError(errno.EIO, "write made no progress")
        data, offset = data[n:], offset + n


def _write_direct(path: str, data: memoryview, start: int) -> int:
    """Write with O_DIRECT; returns how many bytes from the start it wrote (0 where refused)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    except (OSError, AttributeError):  # no O_DIRECT here (tmpfs on older kernels, some FUSE, macOS)
        return 0
    done = 0
    try:
        while done < len(data):
            n = os.pwrite(fd, data[done:], start + done)
            done += max(n, 0)
            if n <= 0 or n % DIRECT_ALIGN:  # short and unaligned: the rest goes the ordinary way
                break
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: the filesystem or the buffer does not suit O_DIRECT
            raise
    finally:
        os.close(fd)
    return done


def _write_range(path: str, data: memoryview, start: int, direct: bool) -> None:
    """pwrite ``data`` at ``start``; with ``direct``, the aligned bulk bypasses the page cache.

    A durable restore would write every page twice through memory otherwise (copy
    into the cache, then writeback at fsync); O_DIRECT sends it to the disk once.
    Whatever O_DIRECT does not take (an unaligned tail, a filesystem without it)
    gets ordinary writes.
    """
    done = 0
    if direct and start % DIRECT_ALIGN == 0 and len(data) >= DIRECT_ALIGN:
        done = _write_direct(path, data[:len(data) - len(data) % DIRECT_ALIGN], start)
    if done < len(data):
        fd = os.open(path, os.O_WRONLY)
        try:
            _pwrite_all(fd, data[done:], start + done)
        finally:
            os.close(fd)


def _restore_range(task: tuple[int, int, int, int]) -> tuple[int, int, dict]:
    """Worker: read chunks [lo, hi) pack-sequentially, check them, pwrite them at their offset."""
    global _scratch, _reader
    repo, ids, path, direct = _job
    lo, hi, start, end = task
    if _scratch is None or len(_scratch) < end - start:
        # Private: a shared anonymous map would be one buffer for every forked worker.
        _scratch = mmap.mmap(-1, end - start, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    out = memoryview(_scratch)[:end - start]
    payloads: dict = {}
    if _reader is None:
        _reader = repo.reader()
    got = _reader.read_into(out, ids[lo * 32:hi * 32], payloads)
    if got != end - start:
        raise IntegrityError(f"chunks {lo}..{hi} hold {got} bytes, expected {end - start}")
    _write_range(path, out, start, direct)
    return start, got, payloads


def _chunk_offsets(repo: Repository, entry: FileEntry, ids: bytes, bounds: list[int]) -> list[int]:
    """File offsets of the chunks at ``bounds``: arithmetic for page chunks, from the index otherwise."""
    if entry.chunker.startswith("fixed-"):
        size = int(entry.chunker.split("-", 1)[1])
        return [min(b * size, entry.size) for b in bounds]
    offsets, pos, at = [], 0, 0
    for b in bounds:
        while at < b:
            loc = repo.index.get(ids[at * 32:(at + 1) * 32])
            if loc is None:
                raise MissingChunk(f"{entry.path}: chunk {ids[at * 32:(at + 1) * 32].hex()[:16]} is not in the index")
            pos += loc.plain_length
            at += 1
        offsets.append(pos)
    return offsets


def materialize(repo: Repository, entry: FileEntry, path: Path, progress: Callable[[int], None] | None = None,
                workers: int | None = None, durable: bool = True,
                on_prefix: Callable[[int], None] | None = None) -> dict[tuple[bytes, int], int]:
    """Write a snapshot file to ``path`` (a new file), in parallel; every chunk is hash-checked.

    ``durable`` fsyncs the result (restores); an export's folder is checked by its
    checksums instead, and syncing gigabytes there would double its time.
    ``on_prefix(n)`` is told each time the first ``n`` bytes are all written, so a
    reader can follow the writers.  Returns the repository payloads read,
    (pack, offset) -> stored bytes.
    """
    global _job, _scratch, _reader
    with repo.reader() as reader:
        ids = _checked_ids(reader, entry)
    count = len(ids) // 32
    bounds = list(range(0, count, RESTORE_TASK_CHUNKS)) + [count]
    offsets = _chunk_offsets(repo, entry, ids, bounds)
    if offsets[-1] != entry.size:
        raise IntegrityError(f"{entry.path}: chunks add up to {offsets[-1]} bytes, manifest says {entry.size}")
    with open(path, "wb") as f:
        f.truncate(entry.size)
    tasks = [(bounds[i], bounds[i + 1], offsets[i], offsets[i + 1]) for i in range(len(bounds) - 1)]
    workers = workers or min(len(tasks), os.cpu_count() or 1, 4)
    _job = (repo, ids, str(path), durable)
    payloads: dict[tuple[bytes, int], int] = {}
    try:
        if workers <= 1:
            results: Iterator = map(_restore_range, tasks)
            pool = None
        else:
            pool = start_pool(multiprocessing.get_context("fork"), workers)
            results = pool.imap_unordered(_restore_range, tasks)
        landed: dict[int, int] = {}  # start -> end of the ranges written beyond the prefix
        prefix = 0
        try:
            for start, n, read in results:
                payloads.update(read)
                landed[start] = start + n
                while prefix in landed:
                    prefix = landed.pop(prefix)
                if on_prefix:
                    on_prefix(prefix)
                if progress:
                    progress(n)
        finally:
            if pool is not None:
                pool.terminate()
    finally:
        _job = None
        _scratch = None  # the in-process path's buffer: not kept between calls
        if _reader is not None:
            _reader.close()
            _reader = None
    if durable:
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
    return payloads
