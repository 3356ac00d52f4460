"""Reading a PostgreSQL snapshot back: the API export and restore build on.

    capture = open_pg_capture(repo, "latest")
    for table in capture.tables():            # TableInfo: schema, name, columns, primary_key, row_count
        for block in capture.copy_data(table):  # COPY TEXT bytes, rows in key order
            ...
    capture.schema_sql("pre-data"); capture.schema_sql("post-data"); capture.sequences()

Every byte comes from hash-checked chunks; the info document is read once.
"""
from __future__ import annotations

import json
from typing import Iterator

from ...errors import IntegrityError, UnsupportedFormat, UsageError
from ...extract import iter_file_chunks
from ...manifest import Snapshot, resolve_snapshot
from ...repository import Repository
from .layout import CLEAN_PATH, FORMAT_VERSION, INFO_PATH, POST_DATA_PATH, PRE_DATA_PATH, TableInfo

SECTIONS = {"pre-data": PRE_DATA_PATH, "post-data": POST_DATA_PATH, "clean": CLEAN_PATH}


class PgCapture:
    """One PostgreSQL snapshot in a repository."""

    def __init__(self, repo: Repository, snap: Snapshot):
        if snap.database.get("type") != "postgresql":
            raise UsageError(f"snapshot {snap.short_id} is not of a PostgreSQL database "
                             f"({snap.database.get('type', 'unknown')})")
        self.repo, self.snapshot = repo, snap
        self.payloads: dict[tuple[bytes, int], int] = {}  # (pack, offset) -> stored bytes of what was read
        self.read_paths: set[str] = set()  # files read to their end (all their payloads in ``payloads``)
        self.info = json.loads(self._read(INFO_PATH))
        if self.info.get("format", 0) > FORMAT_VERSION:
            raise UnsupportedFormat(f"snapshot {snap.short_id} holds PostgreSQL format {self.info['format']}, "
                                    f"newer than this snapstore reads ({FORMAT_VERSION})")
        self._tables = [TableInfo.from_doc(t) for t in self.info["tables"]]

    def _chunks(self, path: str) -> Iterator[bytes]:
        entry = self.snapshot.file(path)
        size = 0
        for data in iter_file_chunks(self.repo, entry, self.payloads):
            size += len(data)
            yield data
        if size != entry.size:
            raise IntegrityError(f"{path}: read {size} bytes, manifest says {entry.size}")
        self.read_paths.add(path)

    def _read(self, path: str) -> bytes:
        return b"".join(self._chunks(path))

    @property
    def server_version(self) -> str:
        return self.info["server_version"]

    @property
    def server_version_num(self) -> int:
        return self.info["server_version_num"]

    @property
    def extensions(self) -> list[dict]:
        """``[{"name", "version", "schema"}]`` (plpgsql left out)."""
        return self.info["extensions"]

    def tables(self) -> list[TableInfo]:
        return list(self._tables)

    def table(self, name: str) -> TableInfo:
        """By ``schema.name`` or, when unambiguous, the bare name."""
        found = [t for t in self._tables if name in (t.key, t.name)]
        if len(found) != 1:
            raise UsageError(f"snapshot {self.snapshot.short_id} has {'no' if not found else 'several'} "
                             f"table {name!r}")
        return found[0]

    def schema_sql(self, section: str) -> str:
        """``pre-data`` / ``post-data`` (pg_dump's sections, no owners or grants), or ``clean``
        (the DROP … IF EXISTS statements that let a load replace an existing schema)."""
        if section not in SECTIONS:
            raise UsageError(f"unknown schema section {section!r}: use {', '.join(SECTIONS)}")
        return self._read(SECTIONS[section]).decode()

    def copy_data(self, table: TableInfo | str) -> Iterator[bytes]:
        """The table's rows in COPY TEXT format (``COPY t (columns) FROM STDIN``), in key order;
        blocks end anywhere, not at row boundaries."""
        if isinstance(table, str):
            table = self.table(table)
        yield from self._chunks(table.file)

    def sequences(self) -> dict[str, int]:
        """``schema.name`` -> last value (see ``sequence_states`` for ``is_called``)."""
        return {name: s["last_value"] for name, s in self.info["sequences"].items()}

    def sequence_states(self) -> dict[str, dict]:
        """``schema.name`` -> ``{"last_value", "is_called"}``: ``setval(name, last_value, is_called)``."""
        return dict(self.info["sequences"])


def open_pg_capture(repo: Repository, snapshot: str | Snapshot) -> PgCapture:
    snap = snapshot if isinstance(snapshot, Snapshot) else resolve_snapshot(repo, snapshot)
    return PgCapture(repo, snap)
