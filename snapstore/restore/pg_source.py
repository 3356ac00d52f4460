"""A PostgreSQL snapshot restored into an SQLite file (``restore PG-SNAPSHOT --to new.db``).

The snapshot's COPY data is converted into Mirix's SQLite form (``migrate.pg_to_sqlite``)
where the SQLite restore would materialise the stored file; from there on the
SQLite path (whole or selective, safety snapshot, integrity check) is the same.
What SQLite cannot hold is kept in ``not_carried`` for the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Callable

from ..migrate.pg_to_sqlite import pg_only_objects, write_sqlite
from ..sources.postgres.reader import PgCapture
from ..sources.sqlite_capture import DB_PATH
from .sources import FolderSource, SnapshotSource


class PgSnapshotAsSqlite:
    def __init__(self, origin: SnapshotSource):
        self.origin = origin
        self.id, self.label = origin.id, origin.label
        self.not_carried: list[str] = []

    def paths(self) -> list[str]:
        return [*self.origin.paths(), DB_PATH]

    def write(self, path: str, out: BinaryIO) -> None:
        self.origin.write(path, out)

    def database(self, dest: Path, progress: Callable[[int], None] | None) -> None:
        capture = PgCapture(self.origin.repo, self.origin.snap)
        converted = write_sqlite(dest, capture.tables(), capture.copy_data, progress)
        extensions = [e["name"] for e in capture.extensions]
        self.not_carried = converted.not_carried + pg_only_objects(
            capture.schema_sql("post-data"), extensions, capture.sequences())


def as_sqlite_source(origin: SnapshotSource | FolderSource):
    """``origin`` itself, or for a PostgreSQL snapshot, that snapshot read as an SQLite agent."""
    if isinstance(origin, SnapshotSource) and origin.snap.database.get("type") == "postgresql":
        return PgSnapshotAsSqlite(origin)
    return origin
