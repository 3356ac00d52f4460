"""Where a restore finds a PostgreSQL capture, and a PostgreSQL snapshot read as an SQLite file.

A PostgreSQL backup folder (an export: ``database/mirix_dump.sql``) names the
snapshot it was written from; when that snapshot is in the repository (as it is
for the agent's own ``save_agent`` folders) the restore reads the snapshot, whose
content the folder's verified checksums say it equals.  Otherwise the dump is
loaded with ``psql -f`` (``recover_database_only``).

For ``restore PG-SNAPSHOT --to new.db`` the snapshot's COPY data is converted into Mirix's SQLite form (``migrate.pg_to_sqlite``)
where the SQLite restore would materialise the stored file; from there on the
SQLite path (whole or selective, safety snapshot, integrity check) is the same.
What SQLite cannot hold is kept in ``not_carried`` for the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Callable

from ..errors import SnapshotNotFound, UsageError
from ..manifest import resolve_snapshot
from ..migrate.pg_to_sqlite import pg_only_objects, write_sqlite
from ..sources.postgres.reader import PgCapture
from ..sources.sqlite_capture import DB_PATH
from .sources import FolderSource, SnapshotSource


def pg_capture_of(repo, origin: SnapshotSource | FolderSource) -> PgCapture | None:
    """The PostgreSQL capture a source holds or names; None for an SQLite source."""
    if isinstance(origin, SnapshotSource):
        return PgCapture(repo, origin.snap) if origin.snap.database.get("type") == "postgresql" else None
    info = origin.plan.metadata.get("backup_info", {})
    if info.get("database_type") != "postgresql":
        return None
    snapshot_id = str(info.get("snapshot_id") or "")
    try:
        snap = resolve_snapshot(repo, snapshot_id) if len(snapshot_id) >= 4 else None
    except SnapshotNotFound:
        snap = None
    if snap is None or snap.id != snapshot_id or snap.database.get("type") != "postgresql":
        raise UsageError(f"backup folder {origin.label} holds a PostgreSQL dump whose snapshot is not in "
                         f"{repo.path}: load it with psql -f database/mirix_dump.sql (recover_database_only)")
    return PgCapture(repo, snap)


class PgSnapshotAsSqlite:
    def __init__(self, origin: SnapshotSource | FolderSource, capture: PgCapture):
        self.origin, self.capture = origin, capture
        self.id, self.label = origin.id, origin.label
        self.not_carried: list[str] = []

    def paths(self) -> list[str]:
        return [*self.origin.paths(), DB_PATH]

    def write(self, path: str, out: BinaryIO) -> None:
        self.origin.write(path, out)

    def database(self, dest: Path, progress: Callable[[int], None] | None) -> None:
        capture = self.capture
        converted = write_sqlite(dest, capture.tables(), capture.copy_data, progress)
        extensions = [e["name"] for e in capture.extensions]
        self.not_carried = converted.not_carried + pg_only_objects(
            capture.schema_sql("post-data"), extensions, capture.sequences())


def as_sqlite_source(repo, origin: SnapshotSource | FolderSource):
    """``origin`` itself, or for a PostgreSQL snapshot or folder, its capture read as an SQLite agent."""
    capture = pg_capture_of(repo, origin)
    return origin if capture is None else PgSnapshotAsSqlite(origin, capture)
