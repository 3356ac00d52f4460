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

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ..errors import SnapshotNotFound, UsageError
from ..folder.layout import DUMP, SCHEMA_INFO, ZST
from ..folder.zst import decompress_stream
from ..manifest import resolve_snapshot
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
        return None
    return PgCapture(repo, snap)


def is_pg_folder(origin: SnapshotSource | FolderSource) -> bool:
    return isinstance(origin, FolderSource) and \
        origin.plan.metadata.get("backup_info", {}).get("database_type") == "postgresql"


def plain_dump(origin: FolderSource, workdir: Path) -> Path:
    """The folder's ``mirix_dump.sql`` as a plain file (decompressed into ``workdir`` if need be)."""
    if DUMP not in origin.plan.files:
        raise UsageError(f"backup folder {origin.label} has no {DUMP}")
    src, compressed = origin.plan.files[DUMP]
    if not compressed:
        return src
    out = workdir / "mirix_dump.sql"
    with open(out, "wb") as f:
        origin.write(DUMP, f)
    return out


def _schema_info(origin: FolderSource) -> dict:
    """``schema_info.json`` of a verified folder (its checksum passed with the rest)."""
    plain, packed = origin.folder / SCHEMA_INFO, origin.folder / (SCHEMA_INFO + ZST)
    if plain.is_file():
        return json.loads(plain.read_bytes())
    if packed.is_file():
        buf = io.BytesIO()
        decompress_stream(packed, buf)
        return json.loads(buf.getvalue())
    raise UsageError(f"backup folder {origin.label} has no {SCHEMA_INFO}")


def folder_dump(origin: FolderSource, workdir: Path) -> "FolderDump":
    return FolderDump(plain_dump(origin, workdir), _schema_info(origin))


class PgSnapshotAsSqlite:
    """A PostgreSQL snapshot -- or a PostgreSQL folder whose snapshot is elsewhere -- as an SQLite file."""

    def __init__(self, origin: SnapshotSource | FolderSource, capture: PgCapture | None):
        self.origin, self.capture = origin, capture
        self.id, self.label = origin.id, origin.label
        self.not_carried: list[str] = []

    def paths(self) -> list[str]:
        return [*self.origin.paths(), DB_PATH]

    def write(self, path: str, out: BinaryIO) -> None:
        self.origin.write(path, out)

    def database(self, dest: Path, progress: Callable[[int], None] | None) -> None:
        from ..migrate.pg_to_sqlite import pg_only_objects, write_sqlite  # here: restores of SQLite skip it
        if self.capture is not None:
            source, post_data = self.capture, self.capture.schema_sql("post-data")
        else:
            source = folder_dump(self.origin, dest.parent)
            post_data = source.index_sql
        converted = write_sqlite(dest, source.tables(), source.copy_data, progress)
        extensions = [e["name"] for e in source.extensions]
        self.not_carried = converted.not_carried + pg_only_objects(post_data, extensions, source.sequences())


def as_sqlite_source(repo, origin: SnapshotSource | FolderSource):
    """``origin`` itself, or for a PostgreSQL snapshot or folder, its rows read as an SQLite agent."""
    capture = pg_capture_of(repo, origin)
    if capture is None and not is_pg_folder(origin):
        return origin
    return PgSnapshotAsSqlite(origin, capture)


class FolderDump:
    """A PostgreSQL backup folder read without its snapshot: tables from ``schema_info.json``,
    rows from the ``COPY … FROM stdin`` blocks of ``mirix_dump.sql`` (offsets found in one
    pass, each block then read on its own), so it converts into SQLite with no server at all."""

    def __init__(self, dump: Path, schema_info: dict):
        self.dump = dump
        self._tables = [_DumpTable(doc.get("schema", "public"), key.rsplit(".", 1)[-1],
                                   [(c["name"], c["type"]) for c in doc["columns"]], list(doc["primary_key"]),
                                   doc.get("row_count", 0))
                        for key, doc in schema_info["tables"].items()]
        self.extensions = schema_info.get("extensions", [])
        self._sequences = schema_info.get("sequences", {})
        self._offsets: dict[bytes, int] = {}
        self.index_sql = ""
        self._scan()

    def _scan(self) -> None:
        indexes, offset, in_copy = [], 0, False
        with open(self.dump, "rb") as f:
            for line in f:
                offset += len(line)
                if in_copy:
                    in_copy = line != b"\\.\n"
                elif line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
                    self._offsets[line.split(b" ", 2)[1]] = offset
                    in_copy = True
                elif line.startswith((b"CREATE INDEX ", b"CREATE UNIQUE INDEX ")):
                    indexes.append(line.decode(errors="replace"))
        self.index_sql = "".join(indexes)

    def tables(self) -> list:
        return list(self._tables)

    def sequences(self) -> dict[str, int]:
        return {name: s["last_value"] for name, s in self._sequences.items()}

    def copy_data(self, table) -> Iterator[bytes]:
        from ..sources.postgres.layout import quote_ident

        start = self._offsets.get(f"{quote_ident(table.schema)}.{quote_ident(table.name)}".encode())
        if start is None:
            start = self._offsets.get(f"{table.schema}.{table.name}".encode())
        if start is None:
            raise UsageError(f"{DUMP} has no data for table {table.schema}.{table.name}")
        with open(self.dump, "rb") as f:
            f.seek(start)
            for line in f:
                if line == b"\\.\n":
                    return
                yield line
        raise UsageError(f"{DUMP} ends inside the data of table {table.name}")


@dataclass
class _DumpTable:
    schema: str
    name: str
    columns: list[tuple[str, str]]
    primary_key: list[str]
    row_count: int = 0

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"
