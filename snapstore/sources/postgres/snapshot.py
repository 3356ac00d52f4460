"""One consistent moment of a PostgreSQL database, shared by the capture and pg_dump.

The connection opens a ``REPEATABLE READ, READ ONLY`` transaction and exports its
snapshot (``pg_export_snapshot()``); ``pg_dump --snapshot`` imports it, so the
schema, every fingerprint and every COPY see the same committed state while the
agent keeps writing.  The snapshot can be imported only while the exporting
transaction is open, and it holds back VACUUM's horizon for as long as it is:
callers keep the ``with`` block short.
"""
from __future__ import annotations

import psycopg
from psycopg import sql

from .connect import PgTarget

BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def _begin(conn: psycopg.Connection, snapshot_id: str | None = None) -> None:
    conn.execute(BEGIN)
    if snapshot_id is not None:  # before the transaction's first query
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
    conn.execute("SET LOCAL synchronize_seqscans TO off")  # COPY from the table's start
    # the range fingerprints sort every key of a table: in memory, not in temp files
    # (60 000 messages spill past the default 4 MB), for this transaction only
    conn.execute("SET LOCAL work_mem TO '64MB'")


class SharedSnapshot:
    """Context manager: the connection holding the snapshot, and the snapshot's id."""

    def __init__(self, target: PgTarget):
        self.target = target
        self.conn: psycopg.Connection | None = None
        self.snapshot_id = ""

    def __enter__(self) -> "SharedSnapshot":
        self.conn = self.target.connect(autocommit=True)
        try:
            _begin(self.conn)
            self.snapshot_id = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        except BaseException:
            self.close()
            raise
        return self

    def attach(self) -> psycopg.Connection:
        """Another connection in this very snapshot (``SET TRANSACTION SNAPSHOT``), for reads
        beside the first one's; the caller closes it before the ``with`` block ends."""
        conn = self.target.connect(autocommit=True)
        try:
            _begin(conn, self.snapshot_id)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()  # the open transaction is rolled back: nothing was written
            except psycopg.Error:
                pass
        self.conn = None

    def __exit__(self, *exc) -> None:
        self.close()
