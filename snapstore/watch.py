"""Continuous capture of a WAL-mode SQLite agent: snapshots whose cost follows the change.

``Watcher.tick`` writes one snapshot through the ordinary backup path (same files,
same repository lock, same commit point), but reads only the pages committed since
its previous snapshot (sources/sqlite_follow.py) and stores the database's chunk list
as that snapshot's list patched at those positions (chunklist.patch_list).  The first
tick after a start, or after a gap in the WAL it could not follow, reads the whole
database as ``snapstore backup`` does; the manifest's ``database.capture`` says which
(``full`` with a ``full_reason``, or ``incremental``) and ``pages_read`` how many pages.

``database.watch`` records the run: one id per watch process (``run``), the snapshot's
place in it (``seq``, 1-based), the ``interval_s`` it ticks at (None: ticks on demand
only), and ``final`` on the snapshot taken before a clean exit.  Consecutive snapshots of
one run cover the time between them at that interval (lifecycle/coverage.py).
"""
from __future__ import annotations

import math
import os
import secrets
import select
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .backup import BackupResult, backup_agent
from .chunklist import ID_SIZE, load_list, patch_list
from .errors import SourceError
from .ingest import GROUP_PAGES, ingest_pages
from .manifest import FileEntry, content_digest
from .repository import BLOB_DATA, Repository
from .sources.agent import AgentSource
from .sources.sqlite_capture import DB_PATH, _unchanged_database
from .sources.sqlite_follow import CHECKPOINT_FRAMES, SWAP_POLL_S, Follower, Tick

GROWTH_S = 1.0  # how often the WAL's length is checked between ticks


@dataclass
class TickResult:
    """What one tick did: the snapshot (None when nothing changed since the last one)."""

    backup: BackupResult | None
    capture: str  # "full" | "incremental" | "unchanged"
    pages_read: int
    page_count: int
    reason: str = ""
    final: bool = False  # the last snapshot before watch exits (written even without a change)
    tick_s: float = 0.0  # the whole tick, with opening the reader and parsing WAL frame headers

    def as_dict(self) -> dict:
        doc = {"capture": self.capture, "pages_read": self.pages_read, "page_count": self.page_count,
               "final": self.final, "tick_s": round(self.tick_s, 3)}
        if self.reason:
            doc["full_reason"] = self.reason
        return (self.backup.as_dict() if self.backup else {"snapshot_id": None}) | doc


def _stat_key(path: Path | None) -> tuple | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


class Watcher:
    """Follows one agent's SQLite database; ``tick`` takes a snapshot, ``close`` ends the reader."""

    def __init__(self, repo: Repository, source: AgentSource, *, host: str | None = None,
                 tags: Iterable[str] = (), include_logs: bool = False, interval_s: float | None = None):
        if not source.database_url.startswith("sqlite:///"):
            raise SourceError("watch follows SQLite databases in WAL mode; use 'snapstore backup' for PostgreSQL")
        self.repo, self.source, self.host, self.include_logs = repo, source, host, include_logs
        repo.keep_index = True  # a tick loads only the index files written since the last one
        self.tags = sorted(set(tags))
        self.follower = Follower(source.database_url.split("///", 1)[1])
        self.follower.check_wal_mode()
        self.ids: bytearray | None = None  # the last snapshot's chunk list, patched in place per tick
        self.entry: FileEntry | None = None  # the last snapshot's database entry
        self.snapshot_id: str | None = None
        self.files_key: tuple | None = None  # config/settings/logs as of the last snapshot
        self.record = {"run": secrets.token_hex(8), "interval_s": interval_s, "seq": 0}  # database.watch

    def _files_key(self) -> tuple:
        logs = None
        if self.include_logs and self.source.log_dir is not None and self.source.log_dir.is_dir():
            logs = tuple((str(p), _stat_key(p)) for p in sorted(self.source.log_dir.rglob("*")) if p.is_file())
        return _stat_key(self.source.config_path), _stat_key(self.source.env_file), logs

    def tick(self, final: bool = False) -> TickResult:
        """One snapshot of what changed (none if nothing did); ``final``: the last before watch exits."""
        started = time.perf_counter()
        with self.follower.lock:
            result = self._tick(final)
            try:
                if result.backup is not None and self.follower.wal_frames() >= CHECKPOINT_FRAMES:
                    self.follower.checkpoint()
            except SourceError:
                pass  # the snapshot is stored; the WAL is checkpointed at the next check
        result.tick_s = time.perf_counter() - started
        return result

    def run(self, stop: threading.Event, on_tick: Callable[[TickResult], None] | None = None) -> None:
        """``snapstore watch`` in this thread: a tick now and every ``interval_s`` until ``stop`` is
        set, then a final one (the API's watch; ``AgentWrapper.watch``)."""
        every = self.record["interval_s"] or 60
        while True:
            final = stop.is_set()
            result = self.tick(final=final)
            if on_tick is not None:
                on_tick(result)
            if final:
                return
            self.wait(every, stop=stop.is_set)

    def wait(self, seconds: float, wake_fd: int | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Sleep until the next tick (``seconds``, or ``wake_fd`` readable), meanwhile letting go
        of the WAL for the agent's checkpoints (polled every ``SWAP_POLL_S``) and checkpointing it
        when it grows past ``CHECKPOINT_FRAMES`` (checked every ``GROWTH_S``)."""
        deadline = time.monotonic() + seconds
        next_growth = time.monotonic() + GROWTH_S
        poller = select.poll()
        if wake_fd is not None:
            poller.register(wake_fd, select.POLLIN)
        while (left := deadline - time.monotonic()) > 0:
            if poller.poll(math.ceil(min(left, SWAP_POLL_S) * 1000)) or (stop is not None and stop()):
                return
            follower = self.follower
            try:
                if follower.checkpointer_waiting():
                    if follower.in_the_way():
                        follower.swap()
                elif time.monotonic() >= next_growth:
                    next_growth = time.monotonic() + GROWTH_S
                    if follower.wal_frames() >= CHECKPOINT_FRAMES:
                        follower.checkpoint()
            except SourceError:
                pass  # a wal-index caught mid-update: the next poll tries again

    def _tick(self, final: bool) -> TickResult:
        tick = self.follower.begin()
        try:
            files_key = self._files_key()
            held = self.follower.held
            if (not final and tick.changed == {} and not self.follower.pending and held is not None
                    and self.entry is not None
                    and tick.mark.page_count == held.mark.page_count and files_key == self.files_key):
                self.follower.advance(tick)  # nothing committed: hold the newer reader, write nothing
                return TickResult(None, "unchanged", 0, tick.mark.page_count)
            capture = _TickCapture(self, tick, self.record | {"seq": self.record["seq"] + 1, "final": final})
            result = backup_agent(self.repo, self.source, include_logs=self.include_logs, tags=self.tags,
                                  host=self.host, capture=capture)
        except BaseException:
            self.follower.discard(tick)
            raise
        self.follower.advance(tick)
        self.record["seq"] += 1
        self.ids, self.entry, self.snapshot_id = capture.ids, result.snapshot.file(DB_PATH), result.snapshot.id
        self.files_key = files_key
        return TickResult(result, capture.mode, capture.pages_read, tick.mark.page_count, capture.reason, final)

    def close(self) -> None:
        self.follower.close()

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _TickCapture:
    """The database part of one tick's snapshot (the ``DatabaseCapture`` interface)."""

    kind = "sqlite"

    def __init__(self, watcher: Watcher, tick: Tick, run: dict):
        self.watcher, self.tick, self.run = watcher, tick, run
        self.ids: bytearray | None = None
        self.mode, self.pages_read, self.reason = "full", 0, tick.reason

    def size_hint(self) -> int:
        return 0

    def capture(self, builder, parent, progress, read_all: bool) -> dict:
        tick = self.tick
        reason = self._incremental_refused(builder, parent)
        if reason:
            self.reason = reason
            entry_reused = self._full(builder, parent, progress)
        else:
            self._incremental(builder)
            entry_reused = False
        database = {"type": "sqlite", "page_size": tick.page_size, "page_count": tick.mark.page_count,
                    "journal_mode": "wal", "fingerprint": tick.fingerprint, "capture": self.mode,
                    "pages_read": self.pages_read, "unchanged": entry_reused, "watch": self.run}
        if self.mode == "full":
            database["full_reason"] = self.reason
        return database

    def _incremental_refused(self, builder, parent) -> str:
        """Why this tick must read the whole database ('' when it need not)."""
        tick, w = self.tick, self.watcher
        if tick.changed is None:
            return tick.reason
        if w.entry is None or w.ids is None:
            return "no snapshot of this watch yet"
        if parent is None or (parent.id != w.snapshot_id and w.snapshot_id not in w.repo.snapshot_ids()):
            return "the previous snapshot was removed"  # its chunks may have been pruned
        old_count = len(w.ids) // ID_SIZE
        grown = set(range(old_count + 1, tick.mark.page_count + 1))
        if not grown <= tick.changed.keys() | w.follower.pending.keys():
            return "the database grew by pages not in the WAL"
        return ""

    def _incremental(self, builder) -> None:
        tick, w = self.tick, self.watcher
        psize, count = tick.page_size, tick.mark.page_count
        ids = bytearray(w.ids)
        if len(ids) > count * ID_SIZE:
            del ids[count * ID_SIZE:]
        else:
            ids.extend(bytes(count * ID_SIZE - len(ids)))
        writer = builder.writer
        blob_id = writer.repo.cipher.blob_id
        positions = []
        group: list[bytes] = []
        members: list[tuple[bytes, int]] = []
        pending = w.follower.pending  # read by swaps since the last snapshot; the WAL's frames are newer
        for pgno in sorted(tick.changed.keys() | pending.keys()):
            if pgno > count:
                continue  # the database was truncated below this page since
            offset = tick.changed.get(pgno)
            data = pending[pgno] if offset is None else w.follower.read_page(offset, psize)
            chunk_id = blob_id(data)
            pos = pgno - 1
            ids[pos * ID_SIZE:(pos + 1) * ID_SIZE] = chunk_id
            positions.append(pos)
            if not writer.has(chunk_id) and (chunk_id, psize) not in members:
                group.append(data)
                members.append((chunk_id, psize))
                if len(group) == GROUP_PAGES:  # compressed together, as a full read does
                    _store_group(writer, group, members)
        if group:
            _store_group(writer, group, members)
        self.pages_read = len(positions)
        ref = patch_list(bytes(ids), positions, w.entry.chunks, builder.writer, builder.reader)
        entry = FileEntry(path=DB_PATH, size=count * psize, chunker=f"fixed-{psize}", digest=content_digest(ids),
                          chunks=ref, mtime=os.stat(w.follower.db_path).st_mtime)
        builder.files.append(entry)
        self.ids, self.mode = ids, "incremental"

    def _full(self, builder, parent, progress) -> bool:
        """Today's backup of the whole database, as the new reader sees it; True if its fingerprint
        equals the parent's and the parent's entry was taken as it is."""
        tick = self.tick
        unchanged = _unchanged_database(parent, tick.fingerprint)
        if unchanged is not None and builder.reuse(unchanged):
            self.ids = bytearray(load_list(unchanged.chunks, builder.reader))
            return True
        image = self.watcher.follower.image(tick)
        pages = ingest_pages(image, builder.writer, progress)
        builder.add(DB_PATH, pages, f"fixed-{image.page_size}", mtime=os.stat(image.db_path).st_mtime)
        self.ids, self.pages_read = bytearray(pages.ids), image.page_count
        return False


def _store_group(writer, group: list[bytes], members: list[tuple[bytes, int]]) -> None:
    codec, payload = writer.compress(b"".join(group))
    writer.add_payloads(BLOB_DATA, [(codec, payload, list(members))])
    group.clear()
    members.clear()
