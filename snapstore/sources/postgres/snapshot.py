"""One consistent moment of a PostgreSQL database, shared by every reader.

The first connection opens a ``REPEATABLE READ, READ ONLY`` transaction and
exports its snapshot (``pg_export_snapshot()``); further connections and
``pg_dump --snapshot`` import it, so the schema, every fingerprint and every
COPY see the same committed state while the agent keeps writing.  The snapshot
can be imported only while the exporting transaction is open, and it holds back
VACUUM's horizon for as long as it is: callers keep the ``with`` block short.
"""
from __future__ import annotations

import psycopg

from .connect import PgTarget

BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class SharedSnapshot:
    """Context manager: the exporting connection, its snapshot id, and ``attach()`` for more."""

    def __init__(self, target: PgTarget):
        self.target = target
        self.conn: psycopg.Connection | None = None
        self.snapshot_id = ""
        self._attached: list[psycopg.Connection] = []

    def __enter__(self) -> "SharedSnapshot":
        self.conn = self.target.connect(autocommit=True)
        try:
            self.conn.execute(BEGIN)
            self.conn.execute("SET LOCAL synchronize_seqscans TO off")  # COPY from the table's start
            self.snapshot_id = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        except BaseException:
            self.close()
            raise
        return self

    def attach(self) -> psycopg.Connection:
        """Another connection reading the very same snapshot."""
        conn = self.target.connect(autocommit=True)
        self._attached.append(conn)
        conn.execute(BEGIN)
        # First statement of the transaction; it takes no parameters (the id comes from the server).
        conn.execute(f"SET TRANSACTION SNAPSHOT '{self.snapshot_id}'")
        conn.execute("SET LOCAL synchronize_seqscans TO off")
        return conn

    def close(self) -> None:
        for conn in [*self._attached, *([self.conn] if self.conn else [])]:
            try:
                conn.close()  # an open transaction is rolled back: nothing was written
            except psycopg.Error:
                pass
        self._attached.clear()
        self.conn = None

    def __exit__(self, *exc) -> None:
        self.close()
