"""Following a live WAL-mode SQLite database between snapshots (``snapstore watch``).

A plain backup reads every page.  A follower keeps one read transaction open between
ticks, which pins the WAL: SQLite never checkpoints a frame newer than that reader's
snapshot into the database file and never restarts (overwrites) the WAL while the
reader holds a read mark above 0.  So every commit made since the previous tick is
still in the WAL, in frames ``mxFrame_old+1 .. mxFrame_new`` of the same generation
(same salt), and the pages those frames name are the only pages that can differ.

A tick (``begin``): under SQLite's write lock for the time of parsing frame headers
(as sources/sqlite.py does), open a *new* read transaction on a second connection, read
the wal-index header (``-shm``) and the headers of the new frames.  The new read
transaction's snapshot is the truth: its pages are the database file overlaid by frames
``1 .. mxFrame_new``, and a changed page's newest version is its last frame among the new
ones (the WAL is not overwritten while either reader holds a mark, so reading it there
is safe even after a checkpoint copied it into the file).  Only then is the old read
transaction ended (``Follower.advance``): there is never a moment without a reader.

When the old reader held read mark 0 (it began with every frame checkpointed, so it
reads only the database file), SQLite may restart the WAL once -- nothing can be
checkpointed past a mark-0 reader, so the database file has not changed, and the
changes are exactly the frames ``1 .. mxFrame`` of the new generation.  Any other salt
change (the follower was not holding its reader) is a gap: the caller reads everything.

Between ticks the held reader is *swapped* (``swap``): the pages committed since it are
read into ``pending`` (memory) and a new reader at the current state replaces it, so the
held reader never stands in the way of a checkpoint for long:

* when another process holds SQLite's checkpoint lock (the agent's own checkpoint,
  waiting for watch's reader: ``checkpointer_waiting``), so the agent's FULL, RESTART and
  TRUNCATE checkpoints cost it a few milliseconds, not its busy timeout.  The first swap
  lets it backfill every frame (the new reader's mark is the last frame), the second,
  once everything is backfilled, takes read mark 0 (the database file only), which lets
  it restart the WAL;
* after a tick when the WAL holds ``CHECKPOINT_FRAMES`` or more (``checkpoint``): watch
  checkpoints itself, as Litestream does, so the WAL of an agent that never checkpoints
  does not grow without bound.  A PASSIVE checkpoint without any lock copies what the
  held reader allows; then, under the write lock, one swap, a PASSIVE checkpoint of the
  few frames committed since, and a swap to read mark 0 -- the agent's next commit
  restarts the WAL.  The agent's writers wait for that second part only.

A swap never leaves a moment without a reader: the new one is opened before the old one
is closed, and is accepted only if the wal-index header read before opening it equals the
one read after (so its snapshot is exactly that header's last frame).

POSIX record locks belong to the process, and closing *any* descriptor of the database
or its ``-wal``/``-shm`` drops SQLite's locks on it: the raw descriptors are opened
once and closed only after every connection (see sources/sqlite.py).
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import struct
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import SourceError
from ..sqlite_uri import sqlite_uri
from .sqlite import BUSY_TIMEOUT_S, SHM_HEADER, SHM_NBACKFILL, WAL_FRAME_HEADER, WAL_HEADER, PageImage


FIRST_SNAPSHOT = "first snapshot since watch started"  # the full_reason of a run's first snapshot
SWAP_POLL_S = 0.002  # how soon an agent's waiting checkpoint is let through (each wake costs watch ~50 µs of CPU)
CHECKPOINT_FRAMES = 1000  # watch checkpoints the WAL past this many frames (SQLite's auto-checkpoint)
SHM_LOCK_BASE = 120  # the unix VFS locks byte 120 + n of the -shm for WAL lock n
WAL_WRITE_LOCK, WAL_CKPT_LOCK = 0, 1
_FLOCK = struct.Struct("hh4xqqi4x")  # struct flock on Linux x86-64/aarch64


class NotWalMode(SourceError):
    """The database is in rollback-journal mode: there is no WAL to follow."""


@dataclass(frozen=True)
class WalMark:
    """Where a held read transaction stands in the WAL."""

    salt: bytes
    mx_frame: int
    mark0: bool  # it began with every frame checkpointed: it reads the database file only
    page_count: int


@dataclass
class Tick:
    """A new read transaction (open) and what it sees."""

    conn: sqlite3.Connection
    mark: WalMark
    page_size: int
    fingerprint: dict
    changed: dict[int, int] | None = None  # page -> WAL offset of its newest new frame; None: read all
                                           # (pages read earlier by a swap: ``Follower.pending``)
    all_frames: dict[int, int] | None = None  # for a full read: page -> offset, frames 1..mx (when known)
    reason: str = ""  # why the whole database must be read


class Follower:
    """Holds the read transactions of ``snapstore watch`` on one WAL-mode database."""

    def __init__(self, db_path: str | os.PathLike):
        self.db_path = Path(db_path)
        self.wal_path = Path(f"{self.db_path}-wal")
        self.held: Tick | None = None  # the reader kept between ticks
        self.pending: dict[int, bytes] = {}  # pages committed between the last snapshot and ``held``
        self.lock = threading.RLock()  # a tick and a swap never run at once
        self.swaps = 0
        self._fds: dict[str, int] = {}  # raw descriptors, closed only in close()

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(sqlite_uri(self.db_path, mode="rw"), uri=True, timeout=BUSY_TIMEOUT_S,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise SourceError(f"cannot open SQLite database {self.db_path}: {exc}") from None

    def check_wal_mode(self) -> None:
        if not self.db_path.is_file():
            raise SourceError(f"SQLite database {self.db_path} does not exist")
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0].lower()
        finally:
            conn.close()
        if mode != "wal":
            raise NotWalMode(f"watch needs WAL mode; {self.db_path} uses journal_mode={mode} "
                             "(switch with PRAGMA journal_mode=WAL, or take snapshots with 'snapstore backup')")

    def _fd(self, path: Path) -> int:
        fd = self._fds.get(str(path))
        if fd is None:
            fd = self._fds[str(path)] = os.open(path, os.O_RDONLY)
        return fd

    def begin(self) -> Tick:
        """Open the next read transaction and find what changed since the held one."""
        writer = self._connect()
        conn = self._connect()
        try:
            with self._closed_on_failure(conn):
                self._write_lock(writer)  # no commit until the header and frames are read
                conn.execute("BEGIN")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                tick = self._read_state(conn)
        finally:
            writer.close()  # rolls back: releases the write lock
        return tick

    @contextmanager
    def _closed_on_failure(self, conn: sqlite3.Connection) -> Iterator[None]:
        """Close ``conn`` if opening its read transaction fails (SQLite's errors as SourceError):
        a half-opened reader must not stay behind to hold the WAL."""
        try:
            yield
        except sqlite3.Error as exc:
            conn.close()
            raise SourceError(f"cannot read SQLite database {self.db_path}: {exc}") from None
        except BaseException:
            conn.close()
            raise

    def _read_state(self, conn: sqlite3.Connection) -> Tick:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0].lower()
        if mode != "wal":
            raise NotWalMode(f"watch needs WAL mode; {self.db_path} switched to journal_mode={mode}")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        mx_frame, salt, checksum, n_backfill = self._header(page_size)
        st = os.stat(self.db_path)
        fingerprint = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
                       "inode": st.st_ino, "page_count": page_count, "wal_salt": salt, "wal_frames": mx_frame,
                       "wal_checksum": checksum, "wal_backfill": n_backfill}
        mark = WalMark(salt, mx_frame, n_backfill >= mx_frame, page_count)
        tick = Tick(conn, mark, page_size, fingerprint)
        after = None if self.held is None else self._since_held(salt)
        if self.held is None:
            tick.reason = FIRST_SNAPSHOT
        elif after is not None and mx_frame >= after:
            tick.changed = self._frames(salt, page_size, after, mx_frame)
        else:
            tick.reason = "the WAL was restarted behind the held reader"
        if tick.changed is None:
            tick.all_frames = self._all_frames(tick)
        return tick

    def _write_lock(self, writer: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE`` on ``writer``.  An agent's FULL/RESTART/TRUNCATE checkpoint holds the
        write lock while it waits for watch's reader: waiting for it, swap the reader (else both
        wait until the agent's busy timeout)."""
        writer.execute(f"PRAGMA busy_timeout = {max(1, int(SWAP_POLL_S * 1000))}")
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            try:
                if self.held is not None and self.checkpointer_waiting() and self.in_the_way():
                    self.swap()
            except SourceError:
                pass  # a wal-index caught mid-update: try again

    def _header(self, page_size: int) -> tuple[int, bytes, bytes, int]:
        """(mxFrame, salt, frame checksum, nBackfill) from the wal-index header."""
        shm_path = Path(f"{self.db_path}-shm")
        raw = os.pread(self._fd(shm_path), SHM_HEADER.size * 2 + SHM_NBACKFILL.size, 0)
        if len(raw) < SHM_HEADER.size * 2 + SHM_NBACKFILL.size or raw[:48] != raw[48:96]:
            raise SourceError(f"unexpected wal-index state in {shm_path}; retry")
        hdr = SHM_HEADER.unpack_from(raw, 0)
        mx_frame = hdr[6]
        if mx_frame and (hdr[5] if hdr[5] != 1 else 65536) != page_size:
            raise SourceError(f"wal-index of {self.db_path} disagrees on the page size; retry")
        (n_backfill,) = SHM_NBACKFILL.unpack_from(raw, 96)
        return mx_frame, raw[32:40], raw[24:32], n_backfill

    def _since_held(self, salt: bytes) -> int | None:
        """The last frame the held reader's state includes in generation ``salt`` (None: a gap)."""
        held = self.held.mark
        if salt == held.salt:
            return held.mx_frame
        return 0 if held.mark0 else None  # restarted once past a mark-0 reader

    def checkpointer_waiting(self) -> bool:
        """Another process holds SQLite's checkpoint lock and the WAL's write lock: a FULL, RESTART
        or TRUNCATE checkpoint is running or waiting (for watch's reader, perhaps).  A PASSIVE one
        (the agent's automatic checkpoints) takes no write lock and waits for no reader: letting
        go for it would only read the pages since the last snapshot into memory early."""
        fd = self._fds.get(f"{self.db_path}-shm")
        if fd is None:
            return False
        return self._held_by_other(fd, WAL_CKPT_LOCK) and self._held_by_other(fd, WAL_WRITE_LOCK)

    @staticmethod
    def _held_by_other(fd: int, lock: int) -> bool:
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, SHM_LOCK_BASE + lock, 1, 0)
        try:
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        except OSError:
            return False
        return _FLOCK.unpack(answer)[0] != fcntl.F_UNLCK

    def in_the_way(self) -> bool:
        """Whether a swap would let a checkpoint go further: frames past the held reader's, or a
        held read mark above 0 that could now be 0."""
        held = self.held
        if held is None:
            return False
        mx_frame, salt, _, n_backfill = self._header(held.page_size)
        if salt != held.mark.salt:
            return mx_frame > 0  # a new generation past a mark-0 reader, which blocks its backfill
        return mx_frame > held.mark.mx_frame or (not held.mark.mark0 and n_backfill >= mx_frame)

    def wal_frames(self) -> int:
        """Frames in the WAL now (its size in pages)."""
        if self.held is None:
            return 0
        return self._header(self.held.page_size)[0]

    def swap(self) -> bool:
        """Read the pages committed since the held reader into ``pending`` and hold a new reader
        at the current state instead (False: the state moved meanwhile, or nothing is held)."""
        with self.lock:
            held = self.held
            if held is None:
                return False
            psize = held.page_size
            mx_frame, salt, _, _ = self._header(psize)
            after = self._since_held(salt)
            if after is None:
                return False  # a gap: the next tick reads everything
            pages = {pgno: self.read_page(offset, psize)
                     for pgno, offset in self._frames(salt, psize, after, mx_frame).items()}
            conn = self._connect()
            with self._closed_on_failure(conn):
                conn.execute("BEGIN")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the read transaction
                page_count = conn.execute("PRAGMA page_count").fetchone()[0]
                again, salt2, _, n_backfill = self._header(psize)
            if (again, salt2) != (mx_frame, salt):
                conn.close()  # a commit came in between: try again later
                return False
            self.pending.update(pages)
            self.held = Tick(conn, WalMark(salt, mx_frame, n_backfill >= mx_frame, page_count), psize,
                             held.fingerprint)
            held.conn.close()
            self.swaps += 1
            return True

    def checkpoint(self) -> bool:
        """Checkpoint the WAL so that the agent's next commit restarts it (PASSIVE: never waits for
        the agent's readers).  True if the held reader ends at read mark 0."""
        with self.lock:
            if self.held is None:
                return False
            conn = self._connect()
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # up to the held reader
                writer = self._connect()
                try:
                    self._write_lock(writer)  # no commit until the reader is at mark 0
                    if not self.swap():
                        return False
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # the frames since
                    return self.swap() and self.held.mark.mark0
                finally:
                    writer.close()
            except sqlite3.Error as exc:
                raise SourceError(f"cannot checkpoint SQLite database {self.db_path}: {exc}") from None
            finally:
                conn.close()

    def _all_frames(self, tick: Tick) -> dict[int, int]:
        """Every page's newest frame in ``tick``'s snapshot.  Under the write lock, or later: while
        ``tick``'s reader is open, frames up to its ``mxFrame`` are never overwritten (and when all
        were checkpointed, the database file alone is its snapshot)."""
        fp = tick.fingerprint
        if fp["wal_backfill"] >= tick.mark.mx_frame:
            return {}
        return self._frames(tick.mark.salt, tick.page_size, 0, tick.mark.mx_frame)

    def _frames(self, salt: bytes, page_size: int, after: int, upto: int) -> dict[int, int]:
        """Page -> WAL offset of its newest frame among frames ``after+1 .. upto`` (write lock held)."""
        frames: dict[int, int] = {}
        if upto <= after:
            return frames
        wal = self._fd(self.wal_path)
        if os.pread(wal, WAL_HEADER.size, 0)[16:24] != salt:
            raise SourceError(f"WAL of {self.db_path} does not match its wal-index; retry")
        frame_size = WAL_FRAME_HEADER.size + page_size
        for i in range(after, upto):
            offset = WAL_HEADER.size + i * frame_size
            header = os.pread(wal, WAL_FRAME_HEADER.size, offset)
            if header[8:16] != salt:
                raise SourceError(f"WAL frame {i + 1} of {self.db_path} has a stale salt; retry")
            frames[int.from_bytes(header[:4], "big")] = offset + WAL_FRAME_HEADER.size
        return frames

    def read_page(self, offset: int, page_size: int) -> bytes:
        """One page from the WAL (under a held read mark its frames are never overwritten)."""
        data = os.pread(self._fd(self.wal_path), page_size, offset)
        if len(data) != page_size:
            raise SourceError(f"WAL of {self.db_path} ends inside a frame; retry")
        return data

    def image(self, tick: Tick) -> PageImage:
        """The whole database as ``tick``'s reader sees it (for a full read in forked workers)."""
        if tick.all_frames is None:  # a full read decided after the write lock was released
            tick.all_frames = self._all_frames(tick)
        return PageImage(str(self.db_path), str(self.wal_path), tick.page_size, tick.mark.page_count,
                         tick.all_frames, "wal", tick.fingerprint)

    def advance(self, tick: Tick) -> None:
        """``tick``'s snapshot is stored (with ``pending``): hold its reader, end the previous one."""
        previous, self.held = self.held, tick
        self.pending = {}
        if previous is not None:
            previous.conn.close()

    def discard(self, tick: Tick) -> None:
        """The tick failed: end its reader, keep the previous one."""
        tick.conn.close()

    def close(self) -> None:
        if self.held is not None:
            self.held.conn.close()
            self.held = None
        for fd in self._fds.values():  # only now: earlier would drop SQLite's locks
            os.close(fd)
        self._fds.clear()

