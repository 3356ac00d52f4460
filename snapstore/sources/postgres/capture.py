"""PostgreSQL capture: one shared snapshot, each table's changed key ranges, the schema sections.

For every table the range fingerprints (ranges.py) are compared with the parent
snapshot's; ranges that are equal reuse the parent's chunk ids without being
read, the others are read with COPY (runs of neighbouring ranges in one
statement) and cut with FastCDC, range by range, so a range's chunks never
depend on its neighbours.  Everything that needs the snapshot happens inside
one ``with SharedSnapshot``; the fingerprints are computed on a second connection in
that snapshot, a table ahead (``_Planner``); the schema's ``pg_restore`` passes and the
storing of small files happen after it has ended.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import psycopg
import zstandard

from ...chunklist import all_stored, load_list
from ...errors import IntegrityError, SnapshotNotFound, SourceError
from ...repository import BLOB_DATA
from ...repository.pack import CODEC_ZSTD
from ...ingest import IngestResult, cdc_chunker, ingest_chunks
from . import catalog
from .connect import PgTarget
from .copystream import RowSplitter
from .layout import (CLEAN_PATH, FORMAT_VERSION, INFO_PATH, POST_DATA_PATH, PRE_DATA_PATH, TableInfo,
                     data_path)
from .ranges import RangePlan, plan_ranges, range_query
from .rowchunks import CHUNKER, row_chunks
from .schema_dump import SchemaDump
from .snapshot import SharedSnapshot

if TYPE_CHECKING:
    from ...backup import SnapshotBuilder
    from ...manifest import Snapshot

@dataclass
class ReadStats:
    """What a capture read (tests and the benchmark assert on it, not on time)."""

    tables: int = 0
    ranges: int = 0
    ranges_read: int = 0
    rows_read: int = 0
    bytes_read: int = 0
    full_reads: dict[str, str] = field(default_factory=dict)  # table -> why it was read whole

    def as_doc(self) -> dict:
        return {"tables": self.tables, "ranges": self.ranges, "ranges_read": self.ranges_read,
                "rows_read": self.rows_read, "bytes_read": self.bytes_read, "full_reads": self.full_reads}


def parent_info(builder: "SnapshotBuilder", parent: "Snapshot | None") -> dict | None:
    if parent is None or parent.database.get("type") != "postgresql":
        return None
    try:
        entry = parent.file(INFO_PATH)
    except SnapshotNotFound:
        return None
    try:
        ids = load_list(entry.chunks, builder.reader)
        return json.loads(b"".join(builder.reader.read(ids[i:i + 32]) for i in range(0, len(ids), 32)))
    except IntegrityError:  # lost in a repair: capture every table afresh
        return None


# Each range owns a fixed run of slots in the table's chunk list, padded with the empty chunk,
# so a range that gains or loses a chunk does not shift every position after it: the list is
# then stored as a small patch on the parent's (chunklist.py) instead of written whole.
SLACK_SLOTS = 2


def range_ids(ranges: dict, ids: bytes) -> list[bytes] | None:
    """Each range's own chunk ids in a table's chunk list (the slot padding left out; a list
    from before slots has none), or None when the list is not laid out by ``ranges``."""
    chunks = ranges.get("chunks")
    slots = ranges.get("slots", chunks)
    if chunks is None or sum(slots) * 32 != len(ids):
        return None
    out, pos = [], 0
    for n, s in zip(chunks, slots):
        out.append(ids[pos:pos + n * 32])
        pos += s * 32
    return out


def store_empty_chunk(writer) -> None:
    """The zero-byte chunk that fills unused slots (stored as a zstd frame: never a 0-byte payload)."""
    empty = writer.repo.cipher.empty_id
    if not writer.has(empty):
        writer.add_payloads(BLOB_DATA, [(CODEC_ZSTD, zstandard.ZstdCompressor().compress(b""), [(empty, 0)])])


class _TableCapture:
    def __init__(self, conn: psycopg.Connection, builder: "SnapshotBuilder", stats: ReadStats,
                 progress: Callable[[int], None] | None, read_all: bool):
        self.conn, self.builder, self.stats, self.progress = conn, builder, stats, progress
        self.read_all = read_all
        self.cdc = cdc_chunker(builder.writer)

    def run(self, table: TableInfo, parent_table: TableInfo | None, parent_entry, plan: RangePlan,
            same_bounds: bool) -> None:
        n = len(plan.rows)
        prev = parent_table.ranges if (same_bounds and parent_entry is not None) else {}
        reuse = [bool(prev) and prev["fingerprints"][i] == plan.fingerprints[i] for i in range(n)]
        table.file = data_path(table.schema, table.name)
        table.row_count = sum(plan.rows)
        self.stats.tables += 1
        self.stats.ranges += n
        if not any(reuse):
            self.stats.full_reads[table.key] = ("read-all" if self.read_all
                                                else "new table" if parent_table is None
                                                else "ranges chosen again" if not same_bounds
                                                else "every range changed")
        if all(reuse) and self.builder.reuse(parent_entry):
            table.ranges = prev
            if self.progress:
                self.progress(parent_entry.size)
            return
        # None when the parent's list was lost or does not match its ranges: every range is read.
        parent_ranges = range_ids(prev, self._parent_ids(parent_entry)) if any(reuse) else None
        has_all = self.builder.writer.has_all
        if parent_ranges is None:
            reuse = [False] * n
        elif not has_all(b"".join(own for own, kept in zip(parent_ranges, reuse) if kept)):
            # a chunk was lost (repair packs, missing pack): the ranges holding one are read again
            reuse = [kept and has_all(own) for own, kept in zip(parent_ranges, reuse)]
        per_range: list[bytes] = []
        size = self._reused_size(parent_entry, parent_ranges, reuse) if any(reuse) else 0
        fresh = self._read(table, plan, [i for i in range(n) if not reuse[i]], all_ranges=not any(reuse))
        for i in range(n):
            if reuse[i]:
                own = parent_ranges[i]
                per_range.append(own)
                continue
            result = next(fresh)
            per_range.append(result.ids)
            size += result.size
        for _ in fresh:  # the splitter's final check
            pass
        chunks = [len(r) // 32 for r in per_range]
        slots = prev.get("slots")
        if not slots or any(c > s for c, s in zip(chunks, slots)):
            slots = [c + SLACK_SLOTS for c in chunks]  # a new layout: the list is written whole once
        empty = self.builder.writer.repo.cipher.empty_id
        ids = b"".join(r + empty * (s - len(r) // 32) for r, s in zip(per_range, slots))
        store_empty_chunk(self.builder.writer)
        table.ranges = {"bounds": plan.bounds, "target_rows": plan.target_rows, "fingerprints": plan.fingerprints,
                        "chunks": chunks, "slots": slots}
        self.builder.add(table.file, IngestResult(bytes(ids), size), CHUNKER)

    def _reused_size(self, parent_entry, parent_ranges: list[bytes], reuse: list[bool]) -> int:
        """Bytes of the reused ranges: the parent file's size less its other (few) ranges'
        chunks, or, when one of those is no longer indexed, the sum over the reused ones."""
        get = self.builder.writer.index.get

        def locations(own: bytes) -> list:
            return [get(own[j:j + 32]) for j in range(0, len(own), 32)]

        dropped = [loc for own, kept in zip(parent_ranges, reuse) if not kept for loc in locations(own)]
        if all(loc is not None for loc in dropped):
            return parent_entry.size - sum(loc.plain_length for loc in dropped)
        return sum(loc.plain_length for own, kept in zip(parent_ranges, reuse) if kept for loc in locations(own))

    def _parent_ids(self, parent_entry) -> bytes:
        """The parent's chunk list, or nothing when a blob of the list itself was lost."""
        try:
            return load_list(parent_entry.chunks, self.builder.reader)
        except IntegrityError:
            return b""

    def _read(self, table: TableInfo, plan: RangePlan, ranges: list[int], all_ranges: bool):
        """One COPY of the given ranges; yields an IngestResult per range, in order."""
        query, params = range_query(table, None if all_ranges or not plan.ctids
                                    else [plan.ctids[i] for i in ranges])
        writer = self.builder.writer
        with self.conn.cursor() as cur, cur.copy(query, params or None) as copy:
            splitter = RowSplitter(copy, table.key)
            for k in ranges:
                result = ingest_chunks(row_chunks(splitter.rows(plan.rows[k]), self.cdc), writer, self.progress)
                self.stats.ranges_read += 1
                self.stats.rows_read += plan.rows[k]
                yield result
            splitter.finish()
            self.stats.bytes_read += splitter.bytes_read


class _Planner:
    """Each table's ranges and fingerprints, table after table, on a second connection in the
    same snapshot, while the first reads the changed ranges of the table before: two server
    processes at work.  On the first connection, in turn, when the server refuses a second."""

    def __init__(self, shot: SharedSnapshot):
        self.main = shot.conn
        try:
            self.conn: psycopg.Connection | None = shot.attach()
        except SourceError:  # e.g. max_connections reached
            self.conn = None
        self.pool = ThreadPoolExecutor(1) if self.conn is not None else None

    def plans(self, jobs: list[tuple[TableInfo, TableInfo | None]]) -> Iterator[tuple[RangePlan, bool]]:
        if self.pool is None:
            return (plan_ranges(self.main, table, before) for table, before in jobs)
        futures = [self.pool.submit(plan_ranges, self.conn, table, before) for table, before in jobs]
        return (future.result() for future in futures)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if self.conn is not None:
            self.conn.close()


SCHEMA_FILES = (PRE_DATA_PATH, POST_DATA_PATH, CLEAN_PATH)


def _unchanged_schema(builder: "SnapshotBuilder", parent: "Snapshot | None", prev: dict | None,
                      fingerprint: str) -> list | None:
    """The parent's schema entries when the catalogs have not changed since (no pg_dump needed)
    and every blob they name is still stored (else pg_dump runs and stores them again)."""
    if not prev or prev.get("schema_fingerprint") != fingerprint:
        return None
    try:
        entries = [parent.file(path) for path in SCHEMA_FILES]
    except SnapshotNotFound:
        return None
    return entries if all(all_stored(e.chunks, builder.writer, builder.reader) for e in entries) else None


def capture_postgres(url: str, builder: "SnapshotBuilder", parent: "Snapshot | None",
                     progress: Callable[[int], None] | None = None, read_all: bool = False) -> dict:
    """Store the database at ``url`` as of one moment; returns the manifest's ``database`` entry."""
    target = PgTarget.from_url(url)
    prev = None if read_all else parent_info(builder, parent)
    prev_tables = {f"{t['schema']}.{t['name']}": TableInfo.from_doc(t) for t in (prev or {}).get("tables", [])}
    stats = ReadStats()
    schema: SchemaDump | None = None
    with SharedSnapshot(target) as shot:
        conn = shot.conn
        try:
            server = catalog.server(conn)
            fingerprint = catalog.schema_fingerprint(conn)
            same_schema = _unchanged_schema(builder, parent, prev, fingerprint)
            if same_schema is None:
                schema = SchemaDump(target, shot.snapshot_id, server["server_version_num"] // 10000)
            tables = catalog.tables(conn)
            sequences = catalog.sequences(conn)
            extensions = catalog.extensions(conn)
            parents = []
            for table in tables:
                before = prev_tables.get(table.key)
                entry = None
                if before is not None:
                    try:
                        entry = parent.file(before.file)
                    except SnapshotNotFound:
                        before = None
                parents.append((before, entry))
            reader = _TableCapture(conn, builder, stats, progress, read_all)
            planner = _Planner(shot)
            try:
                plans = planner.plans([(table, before) for table, (before, _) in zip(tables, parents)])
                for table, (before, entry), (plan, same_bounds) in zip(tables, parents, plans):
                    reader.run(table, before, entry, plan, same_bounds)
            finally:
                planner.close()
            if schema is not None:
                schema.wait()  # pg_dump imported the snapshot long before; wait while it is alive anyway
        except psycopg.Error as exc:
            if schema is not None:
                schema.close()
            raise SourceError(f"reading {target.label} failed: {str(exc).strip().splitlines()[0]}") from None
        except BaseException:
            if schema is not None:
                schema.close()
            raise
    if schema is None:
        for entry in same_schema:
            builder.reuse(entry)
        fenced = prev.get("psql_restrict", False)
    else:
        try:
            sections, fenced = schema.sections()
        finally:
            schema.close()
        for path, section in zip(SCHEMA_FILES, ("pre-data", "post-data", "clean")):
            builder.add_bytes(path, sections[section].encode())
    info = {"format": FORMAT_VERSION, **server, "schema_fingerprint": fingerprint, "psql_restrict": fenced,
            "extensions": extensions, "sequences": sequences, "tables": [t.to_doc() for t in tables]}
    builder.add_bytes(INFO_PATH, json.dumps(info, sort_keys=True, separators=(",", ":")).encode())
    return {"type": "postgresql", "format": FORMAT_VERSION, "server_version": server["server_version"],
            "database": server["database"], "schema_dumped": schema is not None, "read": stats.as_doc()}


class PostgresCapture:
    """The PostgreSQL implementation of the source interface (sources/base.py)."""

    kind = "postgresql"

    def __init__(self, url: str):
        self.url = url

    def size_hint(self) -> int:
        return 0  # known only once the snapshot is open; the meter counts bytes read

    def capture(self, builder: "SnapshotBuilder", parent: "Snapshot | None", progress, read_all: bool) -> dict:
        return capture_postgres(self.url, builder, parent, progress, read_all)
