"""Memory-level diff of PostgreSQL snapshots (or a snapshot and the live database), range by range.

A PostgreSQL snapshot stores each table as COPY text cut into key ranges whose
chunks never straddle a range, each range's chunks at the start of its own run of
slots in the table's chunk list (sources/postgres/capture.py).  Between two
snapshots with the same range bounds, a range whose chunk ids are equal holds the
same rows and is skipped; against the live database, a range whose
``(key, xmin)`` fingerprint equals the snapshot's is skipped.  Only the other
ranges are decoded and compared row by row, keyed by the primary key (a table
without one is compared as a multiset of rows).
"""
from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import psycopg

from ...chunklist import load_list
from ...errors import SourceError
from ...manifest import Snapshot
from ...repository import Repository
from ...sources.postgres import catalog
from ...sources.postgres.capture import range_ids
from ...sources.postgres.connect import PgTarget
from ...sources.postgres.layout import TableInfo
from ...sources.postgres.ranges import fingerprints, range_query
from ...sources.postgres.reader import PgCapture
from ...sources.postgres.snapshot import SharedSnapshot
from .model import DiffResult, TableChanges, summarize

_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def unescape(field: bytes) -> str | None:
    r"""One COPY TEXT field as text (``\N`` is NULL)."""
    if field == b"\\N":
        return None
    text = field.decode("utf-8", "replace")
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class SnapshotTables:
    """A PostgreSQL snapshot's tables, each readable range by range from its chunks."""

    def __init__(self, repo: Repository, snap: Snapshot, reader):
        self.capture = PgCapture(repo, snap)
        self.snap, self.reader = snap, reader
        self.tables = {t.key: t for t in self.capture.tables()}
        self._ids: dict[str, bytes] = {}

    def _all_ids(self, table: TableInfo) -> bytes:
        if table.key not in self._ids:
            self._ids[table.key] = load_list(self.snap.file(table.file).chunks, self.reader)
        return self._ids[table.key]

    def range_ids(self, table: TableInfo) -> list[bytes] | None:
        """Each range's own chunk ids, found as the capture finds them (slot padding left out),
        or None when the table was not stored by ranges."""
        return range_ids(table.ranges, self._all_ids(table))

    def read(self, table: TableInfo, ranges: list[int] | None) -> bytes:
        if ranges is None:
            ids = self._all_ids(table)
        else:
            per_range = self.range_ids(table)
            ids = b"".join(per_range[i] for i in ranges)
        return b"".join(self.reader.read(ids[i:i + 32]) for i in range(0, len(ids), 32))


class LiveTables:
    """The live database in one REPEATABLE READ snapshot."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.tables = {t.key: t for t in catalog.tables(conn)}
        self._ctids: dict[str, list[str]] = {}

    def fingerprints(self, table: TableInfo, bounds: list[str]) -> list[str]:
        plan = fingerprints(self.conn, table, bounds)
        self._ctids[table.key] = plan.ctids  # where read() finds the rows of these ranges
        return plan.fingerprints

    def read(self, table: TableInfo, ranges: list[int] | None) -> bytes:
        """The rows of ``ranges`` (of the last ``fingerprints`` of the table), or all (None)."""
        ctids = self._ctids.get(table.key)
        query, params = range_query(table, [ctids[i] for i in ranges] if ranges is not None and ctids else None)
        buf = bytearray()
        with self.conn.cursor().copy(query, params) as copy:
            for block in copy:
                buf += block
        return bytes(buf)


@contextmanager
def live_tables(url: str) -> Iterator[LiveTables]:
    target = PgTarget.from_url(url)
    try:
        with SharedSnapshot(target) as shot:
            yield LiveTables(shot.conn)
    except psycopg.Error as exc:
        raise SourceError(f"reading {target.label} failed: {str(exc).strip().splitlines()[0]}") from None


def _rows(data: bytes, table: TableInfo) -> dict:
    """key -> line for a keyed table; a Counter of lines for one without a key."""
    lines = [line for line in data.split(b"\n") if line]
    if not table.primary_key:
        return Counter(lines)
    names = [c for c, _ in table.columns]
    idx = [names.index(k) for k in table.primary_key]
    out = {}
    for line in lines:
        fields = line.split(b"\t")
        out[tuple(fields[i] for i in idx)] = line
    return out


def _compare(changes: TableChanges, old_table: TableInfo, table: TableInfo, old: bytes, new: bytes,
             limit: int) -> None:
    columns = [c for c, _ in table.columns]

    def summary(line: bytes) -> str:
        return summarize(columns, [unescape(f) for f in line.split(b"\t")])

    rows_a, rows_b = _rows(old, old_table), _rows(new, table)
    if not table.primary_key:
        for line, n in (rows_b - rows_a).items():
            for _ in range(n):
                changes.note("added", line[:40], lambda line=line: summary(line), limit)
        for line, n in (rows_a - rows_b).items():
            for _ in range(n):
                changes.note("removed", line[:40], lambda line=line: summary(line), limit)
        return
    for key, line in rows_b.items():
        before = rows_a.get(key)
        if before is None:
            changes.note("added", tuple(unescape(k) for k in key), lambda line=line: summary(line), limit)
        elif before != line:
            changes.note("changed", tuple(unescape(k) for k in key), lambda line=line: summary(line), limit)
    for key, line in rows_a.items():
        if key not in rows_b:
            changes.note("removed", tuple(unescape(k) for k in key), lambda line=line: summary(line), limit)


def _same_shape(a: TableInfo, b: TableInfo) -> bool:
    return a.columns == b.columns and a.primary_key == b.primary_key


def diff_pg(a: SnapshotTables, b: SnapshotTables | LiveTables, limit: int = 3) -> DiffResult:
    result = DiffResult("postgresql")
    ranges_total = ranges_read = 0
    live = isinstance(b, LiveTables)
    for key in sorted(set(a.tables) | set(b.tables)):
        ta, tb = a.tables.get(key), b.tables.get(key)
        bounds = (ta or tb).ranges.get("bounds", []) if ta else []
        changed: list[int] | None = None  # None: compare the whole table
        if ta is not None and tb is not None and _same_shape(ta, tb) and "bounds" in ta.ranges:
            if live:
                prints = b.fingerprints(tb, bounds)
                changed = [i for i, (p, q) in enumerate(zip(ta.ranges["fingerprints"], prints)) if p != q]
            elif tb.ranges.get("bounds") == bounds:
                ids_a, ids_b = a.range_ids(ta), b.range_ids(tb)
                if ids_a is not None and ids_b is not None:
                    changed = [i for i, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y]
        n = len(bounds) + 1
        ranges_total += n
        ranges_read += n if changed is None else len(changed)
        if changed == []:
            old = new = b""
        else:
            old = a.read(ta, changed) if ta else b""
            if tb is None:
                new = b""
            else:
                new = b.read(tb, changed)
        changes = TableChanges()
        _compare(changes, ta or tb, tb or ta, old, new, limit)
        result.tables[(tb or ta).name if (tb or ta).schema == "public" else key] = changes
    result.read = {"ranges": ranges_total, "ranges_read": ranges_read}
    return result
