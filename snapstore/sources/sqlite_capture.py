"""The SQLite implementation of the source interface: the database file, page by page.

Pages are read under SQLite's own read transaction (sources/sqlite.py) and stored
as fixed page-size chunks (ingest.py); a database whose commit state has not
moved since the parent snapshot reuses the parent's entry without being read.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SnapshotNotFound
from .sqlite import SQLiteImageReader

if TYPE_CHECKING:
    from ..backup import SnapshotBuilder
    from ..manifest import FileEntry, Snapshot

DB_PATH = "database/sqlite.db"


def _unchanged_database(parent: "Snapshot | None", fingerprint: dict) -> "FileEntry | None":
    """The parent's database entry when the file provably has not changed since (restic's
    and borg's files-cache idea, keyed on SQLite's own commit state as well as stat)."""
    if parent is None or not fingerprint or parent.database.get("fingerprint") != fingerprint:
        return None
    try:
        return parent.file(DB_PATH)
    except SnapshotNotFound:
        return None


class SQLiteCapture:
    kind = "sqlite"

    def __init__(self, url: str):
        self.path = Path(url.split("///", 1)[1])

    def size_hint(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def capture(self, builder: "SnapshotBuilder", parent: "Snapshot | None", progress, read_all: bool) -> dict:
        from ..ingest import ingest_pages

        with SQLiteImageReader(self.path) as image:
            database = {"type": "sqlite", "page_size": image.page_size, "page_count": image.page_count,
                        "journal_mode": image.journal_mode, "fingerprint": image.fingerprint}
            unchanged = _unchanged_database(parent, image.fingerprint) if not read_all else None
            if unchanged is not None and not builder.reuse(unchanged):
                unchanged = None  # a chunk it names was lost: read the file to store it again
            if unchanged is not None:
                if progress:
                    progress(image.size)
            else:
                pages = ingest_pages(image, builder.writer, progress)
                builder.add(DB_PATH, pages, f"fixed-{image.page_size}", mtime=self.path.stat().st_mtime)
        database["unchanged"] = unchanged is not None
        return database
