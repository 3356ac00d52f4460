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

POSIX record locks belong to the process, and closing *any* descriptor of the database
or its ``-wal``/``-shm`` drops SQLite's locks on it: the raw descriptors are opened
once and closed only after every connection (see sources/sqlite.py).
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from ..sqlite_uri import sqlite_uri
from .sqlite import BUSY_TIMEOUT_S, SHM_HEADER, SHM_NBACKFILL, WAL_FRAME_HEADER, WAL_HEADER, PageImage


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
    all_frames: dict[int, int] | None = None  # for a full read: page -> offset, frames 1..mx (when known)
    reason: str = ""  # why the whole database must be read


class Follower:
    """Holds the read transactions of ``snapstore watch`` on one WAL-mode database."""

    def __init__(self, db_path: str | os.PathLike):
        self.db_path = Path(db_path)
        self.wal_path = Path(f"{self.db_path}-wal")
        self.held: Tick | None = None  # the reader kept between ticks
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
            writer.execute("BEGIN IMMEDIATE")  # no commit until the header and frames are read
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            tick = self._read_state(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise SourceError(f"cannot read SQLite database {self.db_path}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        finally:
            writer.close()  # rolls back: releases the write lock
        return tick

    def _read_state(self, conn: sqlite3.Connection) -> Tick:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0].lower()
        if mode != "wal":
            raise NotWalMode(f"watch needs WAL mode; {self.db_path} switched to journal_mode={mode}")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        shm_path = Path(f"{self.db_path}-shm")
        raw = os.pread(self._fd(shm_path), SHM_HEADER.size * 2 + SHM_NBACKFILL.size, 0)
        if len(raw) < SHM_HEADER.size * 2 + SHM_NBACKFILL.size or raw[:48] != raw[48:96]:
            raise SourceError(f"unexpected wal-index state in {shm_path}; retry")
        hdr = SHM_HEADER.unpack_from(raw, 0)
        mx_frame, salt = hdr[6], raw[32:40]
        if mx_frame and (hdr[5] if hdr[5] != 1 else 65536) != page_size:
            raise SourceError(f"wal-index of {self.db_path} disagrees on the page size; retry")
        (n_backfill,) = SHM_NBACKFILL.unpack_from(raw, 96)
        st = os.stat(self.db_path)
        fingerprint = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
                       "inode": st.st_ino, "page_count": page_count, "wal_salt": salt, "wal_frames": mx_frame,
                       "wal_checksum": raw[24:32], "wal_backfill": n_backfill}
        mark = WalMark(salt, mx_frame, n_backfill >= mx_frame, page_count)
        tick = Tick(conn, mark, page_size, fingerprint)
        held = self.held.mark if self.held else None
        if held is None:
            tick.reason = "first snapshot since watch started"
        elif salt == held.salt and mx_frame >= held.mx_frame:
            tick.changed = self._frames(salt, page_size, held.mx_frame, mx_frame)
        elif salt != held.salt and held.mark0:
            tick.changed = self._frames(salt, page_size, 0, mx_frame)  # restarted once past a mark-0 reader
        else:
            tick.reason = "the WAL was restarted behind the held reader"
        if tick.changed is None:
            tick.all_frames = self._all_frames(tick)
        return tick

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
        """``tick``'s snapshot is stored: hold its reader, end the previous one."""
        previous, self.held = self.held, tick
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

