"""PostgreSQL capture: one shared snapshot, each table's changed key ranges, the schema sections.

For every table the range fingerprints (ranges.py) are compared with the parent
snapshot's; ranges that are equal reuse the parent's chunk ids without being
read, the others are read with COPY (runs of neighbouring ranges in one
statement) and cut with FastCDC, range by range, so a range's chunks never
depend on its neighbours.  Everything that needs the snapshot happens inside
one ``with SharedSnapshot``; the schema's ``pg_restore`` passes and the storing
of small files happen after it has ended.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import psycopg

from ...chunklist import load_list
from ...errors import SnapshotNotFound, SourceError
from ...ingest import IngestResult, ingest_stream
from . import catalog
from .connect import PgTarget
from .copystream import BlockStream, RowSplitter
from .layout import (CLEAN_PATH, FORMAT_VERSION, INFO_PATH, POST_DATA_PATH, PRE_DATA_PATH, TableInfo,
                     data_path)
from .ranges import RangePlan, plan_ranges, range_query
from .schema_dump import SchemaDump
from .snapshot import SharedSnapshot

if TYPE_CHECKING:
    from ...backup import SnapshotBuilder
    from ...manifest import Snapshot

CHUNKER = "fastcdc-16k"


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
    ids = load_list(entry.chunks, builder.reader)
    return json.loads(b"".join(builder.reader.read(ids[i:i + 32]) for i in range(0, len(ids), 32)))


class _TableCapture:
    def __init__(self, conn: psycopg.Connection, builder: "SnapshotBuilder", stats: ReadStats,
                 progress: Callable[[int], None] | None, read_all: bool):
        self.conn, self.builder, self.stats, self.progress = conn, builder, stats, progress
        self.read_all = read_all

    def run(self, table: TableInfo, parent_table: TableInfo | None, parent_entry) -> None:
        plan, same_bounds = plan_ranges(self.conn, table, parent_table)
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
        if all(reuse):
            table.ranges = dict(prev, rows=plan.rows)
            self.builder.reuse(parent_entry)
            if self.progress:
                self.progress(parent_entry.size)
            return
        parent_ids = load_list(parent_entry.chunks, self.builder.reader) if any(reuse) else b""
        starts = [0]
        for count in prev.get("chunks", []):
            starts.append(starts[-1] + count)
        ids, chunks, sizes = bytearray(), [0] * n, [0] * n
        new_chunks = new_bytes = 0
        fresh = self._read(table, plan, [i for i in range(n) if not reuse[i]], all_ranges=not any(reuse))
        for i in range(n):
            if reuse[i]:
                ids += parent_ids[starts[i] * 32:starts[i + 1] * 32]
                chunks[i], sizes[i] = prev["chunks"][i], prev["bytes"][i]
                continue
            result = next(fresh)
            ids += result.ids
            chunks[i], sizes[i] = len(result.ids) // 32, result.size
            new_chunks += result.new_chunks
            new_bytes += result.new_bytes
        for _ in fresh:  # the splitter's final check
            pass
        table.ranges = {"bounds": plan.bounds, "target_rows": plan.target_rows, "rows": plan.rows,
                        "fingerprints": plan.fingerprints, "chunks": chunks, "bytes": sizes}
        self.builder.add(table.file, IngestResult(bytes(ids), sum(sizes), new_chunks, new_bytes), CHUNKER)

    def _read(self, table: TableInfo, plan: RangePlan, ranges: list[int], all_ranges: bool):
        """One COPY of the given ranges; yields an IngestResult per range, in order."""
        query, params = range_query(table, plan.bounds, None if all_ranges else ranges)
        writer = self.builder.writer
        with self.conn.cursor() as cur, cur.copy(query, params or None) as copy:
            splitter = RowSplitter(copy, table.key)
            for k in ranges:
                result = ingest_stream(BlockStream(splitter.rows(plan.rows[k])), writer, self.progress)
                self.stats.ranges_read += 1
                self.stats.rows_read += plan.rows[k]
                yield result
            splitter.finish()
            self.stats.bytes_read += splitter.bytes_read


def capture_postgres(url: str, builder: "SnapshotBuilder", parent: "Snapshot | None",
                     progress: Callable[[int], None] | None = None, read_all: bool = False) -> dict:
    """Store the database at ``url`` as of one moment; returns the manifest's ``database`` entry."""
    target = PgTarget.from_url(url)
    prev = None if read_all else parent_info(builder, parent)
    prev_tables = {f"{t['schema']}.{t['name']}": TableInfo.from_doc(t) for t in (prev or {}).get("tables", [])}
    stats = ReadStats()
    with SharedSnapshot(target) as shot:
        conn = shot.conn
        server = catalog.server(conn)
        schema = SchemaDump(target, shot.snapshot_id, server["server_version_num"] // 10000)
        try:
            tables = catalog.tables(conn)
            sequences = catalog.sequences(conn)
            extensions = catalog.extensions(conn)
            reader = _TableCapture(conn, builder, stats, progress, read_all)
            for table in tables:
                before = prev_tables.get(table.key)
                entry = None
                if before is not None:
                    try:
                        entry = parent.file(before.file)
                    except SnapshotNotFound:
                        before = None
                reader.run(table, before, entry)
            schema.wait()  # pg_dump has imported the snapshot long before; wait while it is alive anyway
        except psycopg.Error as exc:
            schema.close()
            raise SourceError(f"reading {target.label} failed: {str(exc).strip().splitlines()[0]}") from None
        except BaseException:
            schema.close()
            raise
    try:
        sections, fenced = schema.sections()
    finally:
        schema.close()
    builder.add_bytes(PRE_DATA_PATH, sections["pre-data"].encode())
    builder.add_bytes(POST_DATA_PATH, sections["post-data"].encode())
    builder.add_bytes(CLEAN_PATH, sections["clean"].encode())
    info = {"format": FORMAT_VERSION, **server, "psql_restrict": fenced, "extensions": extensions, "sequences": sequences,
            "tables": [t.to_doc() for t in tables]}
    builder.add_bytes(INFO_PATH, json.dumps(info, indent=1, sort_keys=True).encode())
    return {"type": "postgresql", "format": FORMAT_VERSION, "server_version": server["server_version"],
            "database": server["database"], "read": stats.as_doc()}


class PostgresCapture:
    """The PostgreSQL implementation of the source interface (sources/base.py)."""

    kind = "postgresql"

    def __init__(self, url: str):
        self.url = url

    def size_hint(self) -> int:
        return 0  # known only once the snapshot is open; the meter counts bytes read

    def capture(self, builder: "SnapshotBuilder", parent: "Snapshot | None", progress, read_all: bool) -> dict:
        return capture_postgres(self.url, builder, parent, progress, read_all)
