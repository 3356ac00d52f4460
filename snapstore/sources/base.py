"""The source interface: a consistent capture of an agent's database, whatever its engine.

Backup asks ``database_capture(url)`` for a capture and calls ``capture`` with
the snapshot being built; each engine stores its files under ``database/`` and
returns the manifest's ``database`` entry (whose ``type`` tells export and
restore how to read them back).  SQLite stores the database file page by page
(sources/sqlite_capture.py); PostgreSQL stores COPY data per table plus the
schema (sources/postgres/).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

from ..errors import SourceError
from .agent import is_postgres_url, redact_url

if TYPE_CHECKING:
    from ..backup import SnapshotBuilder
    from ..manifest import Snapshot

Progress = Callable[[int], None]


class DatabaseCapture(Protocol):
    kind: str  # "sqlite" | "postgresql": the manifest's database type

    def size_hint(self) -> int:
        """Bytes the progress meter should expect (0 when unknown)."""

    def capture(self, builder: "SnapshotBuilder", parent: "Snapshot | None", progress: Progress | None,
                read_all: bool) -> dict:
        """Store the database as of one moment; return the manifest's ``database`` entry."""


def database_capture(url: str) -> DatabaseCapture:
    if url.startswith("sqlite:///"):
        from .sqlite_capture import SQLiteCapture

        return SQLiteCapture(url)
    if is_postgres_url(url):
        from .postgres.capture import PostgresCapture

        return PostgresCapture(url)
    raise SourceError(f"unsupported database URL {redact_url(url)}: use sqlite:///PATH or postgresql://…")
