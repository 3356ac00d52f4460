"""Import: verify a backup folder, then store it as a snapshot (deduplicated).

Two layouts are accepted: snapstore's own export (``metadata.json`` +
``verification/checksums.md5``: every listed file must match, and the two lists
must agree) and the folder the real Mirix ``save_agent`` writes (``sqlite.db`` or
``mirix_database.sql``/``.dump``, ``agent_config.json``, ``mirix_config.yaml``).  A
Mirix folder must hold one of its marker files (``MIRIX_MARKERS``): a live agent
directory (``sqlite.db`` beside ``mirix.yaml``) is not a backup, and is refused with
the ``backup`` command that captures it consistently.  An imported snapshot keeps
the agent and host the folder records (this machine's name when it records none),
so ``latest`` never mistakes an agent from elsewhere for the local one.
Derived files (the SQL dump of an SQLite agent, schema info, memory JSON) are not
stored: export regenerates them from the database.  Nothing is written to the
repository until the whole folder has been checked.
"""
from __future__ import annotations

import hashlib
import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from .backup import CONFIG_PATH, DB_PATH, BackupResult, SnapshotBuilder
from .errors import IntegrityError, UsageError
from .folder.checksums import checksum_problems
from .folder.zst import decompress_to
from .folder.layout import DUMP, ENCRYPTION_HEADER, METADATA, SQLITE_DB, ZST, folder_files, read_metadata
from .ingest import Progress, cdc_chunker, ingest_chunks, ingest_pages, iter_cdc_chunks
from .manifest import Snapshot, list_snapshots, save_snapshot
from .repository import Repository
from .sources.sqlite import PageImage
from .sqlite_uri import sqlite_uri

MIRIX_LAYOUT = {
    "sqlite.db": DB_PATH,
    "mirix_config.yaml": CONFIG_PATH,
    "agent_config.json": "config/agent_config.json",
    "mirix_database.sql": DUMP,
    "mirix_database.dump": "database/mirix_database.dump",
}
MIRIX_MARKERS = ("agent_config.json", "mirix_config.yaml")  # what only Mirix's save_agent writes
STORED_PREFIXES = ("config/", "logs/")


@dataclass
class FolderPlan:
    """What will be stored: snapshot path -> (file in the folder, zstd-compressed?)."""

    layout: str
    files: dict[str, tuple[Path, bool]]
    metadata: dict
    database_type: str


def check_snapstore_folder(folder: Path, progress: Progress | None = None) -> FolderPlan:
    """Verify checksums; returns the plan or raises naming every file at fault."""
    meta = read_metadata(folder)
    listed, problems = checksum_problems(folder, meta, progress)
    if problems:
        raise IntegrityError(f"{folder} failed verification ({'; '.join(problems)})")
    files: dict[str, tuple[Path, bool]] = {}
    for rel in sorted(listed):
        plain = rel[:-len(ZST)] if rel.endswith(ZST) else rel
        if plain == SQLITE_DB or plain.startswith(STORED_PREFIXES) or (plain == DUMP and SQLITE_DB not in _plain(listed)):
            files[plain] = (folder / rel, rel.endswith(ZST))
    db_type = meta["backup_info"].get("database_type", "unknown")
    return FolderPlan("snapstore", files, meta, db_type)


def _plain(paths: Iterable[str]) -> set[str]:
    return {p[:-len(ZST)] if p.endswith(ZST) else p for p in paths}


def check_mirix_folder(folder: Path) -> FolderPlan:
    present = set(folder_files(folder))
    files = {target: (folder / name, False) for name, target in MIRIX_LAYOUT.items() if name in present}
    if DB_PATH not in files and DUMP not in files and "database/mirix_database.dump" not in files:
        if ENCRYPTION_HEADER in present:
            raise UsageError(f"{folder} is an encrypted backup folder: decrypt it first "
                             "(snapstore.decrypt_backup_folder(path, key))")
        raise UsageError(f"{folder} is not a backup folder: no metadata.json, sqlite.db or mirix_database.sql")
    if not any(m in present for m in MIRIX_MARKERS):
        hint = (f"; to snapshot a live agent use: snapstore backup --config {folder / 'mirix.yaml'}"
                if "mirix.yaml" in present else "; to snapshot a database file use: snapstore backup --db FILE")
        raise UsageError(f"{folder} is not a backup folder: it has no metadata.json and none of the files Mirix's "
                         f"save_agent writes ({', '.join(MIRIX_MARKERS)}){hint}")
    if DB_PATH in files:
        conn = sqlite3.connect(sqlite_uri(files[DB_PATH][0], immutable=1), uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise IntegrityError(f"{files[DB_PATH][0]} is not a usable SQLite database: {exc}") from None
        finally:
            conn.close()
        if result != "ok":
            raise IntegrityError(f"{files[DB_PATH][0]} fails PRAGMA integrity_check: {result}")
    db_type = "sqlite" if DB_PATH in files else "postgresql"
    return FolderPlan("mirix", files, {}, db_type)


def plan_folder(folder: str | Path, progress: Progress | None = None) -> FolderPlan:
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"backup folder {folder} does not exist")
    if (folder / METADATA).exists():
        return check_snapstore_folder(folder, progress)
    return check_mirix_folder(folder)


def static_image(path: Path) -> PageImage:
    """A page image of a database file nobody writes to (a file inside a backup folder)."""
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise IntegrityError(f"{path} is not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    size = path.stat().st_size
    if size % page_size:
        raise IntegrityError(f"{path} is truncated: {size} bytes is not a whole number of {page_size}-byte pages")
    return PageImage(str(path), "", page_size, size // page_size, {}, "file")


def _decompressed(path: Path, workdir: Path) -> Path:
    return decompress_to(path, workdir / (path.name[:-len(ZST)]))


def _hashed(chunks: Iterator[bytes], md5) -> Iterator[bytes]:
    """The chunks, passing each through ``md5`` on its way (they come in file order)."""
    for chunk in chunks:
        md5.update(chunk)
        yield chunk


def import_folder(repo: Repository, folder: str | Path, *, tags: Iterable[str] = ("imported",),
                  progress: Progress | None = None) -> BackupResult:
    """Verify ``folder`` and store it as a snapshot; returns what was added.

    ``progress`` is called with the bytes checksummed, then with the bytes stored."""
    import tempfile

    started = time.perf_counter()
    folder = Path(folder)
    plan = plan_folder(folder, progress)
    counted = progress is not None and hasattr(progress, "total")
    if counted:  # the storing pass, after the checksum pass; a compressed file is re-counted once unpacked
        progress.total += sum(path.stat().st_size for path, _compressed in plan.files.values())
    info = plan.metadata.get("backup_info", {})
    agent = str(info.get("agent_name") or folder.resolve().name)
    host = str(info.get("host") or socket.gethostname())  # where the agent ran, as the folder says
    with repo.lock(), tempfile.TemporaryDirectory(prefix="snapstore-import-") as tmp:
        parents = [s for s in list_snapshots(repo) if s.agent == agent and s.host == host]
        parent = parents[-1] if parents else None
        database: dict = {"type": plan.database_type}
        with repo.writer() as writer, repo.reader() as reader:
            builder = SnapshotBuilder(writer, reader, parent)
            for rel, (path, compressed) in sorted(plan.files.items()):
                source = _decompressed(path, Path(tmp)) if compressed else path
                if counted and compressed:
                    progress.total += source.stat().st_size - path.stat().st_size
                if rel == DB_PATH:
                    image = static_image(source)
                    builder.add(rel, ingest_pages(image, writer, progress), f"fixed-{image.page_size}")
                    database.update(page_size=image.page_size, page_count=image.page_count)
                else:  # streamed: a PostgreSQL dump may be gigabytes
                    md5 = hashlib.md5()
                    with open(source, "rb") as stream:
                        chunks = _hashed(iter_cdc_chunks(stream, cdc_chunker(writer)), md5)
                        result = ingest_chunks(chunks, writer, progress)
                    builder.add(rel, result, "fastcdc-16k", md5=md5.digest())
        snapshot = Snapshot(
            time=datetime.now(timezone.utc).isoformat(timespec="microseconds"), host=host,
            agent=agent, files=builder.files, tags=sorted(set(tags)), parent=parent.id if parent else None,
            source={"folder": str(folder.resolve()), "layout": plan.layout,
                    "original_snapshot": info.get("snapshot_id"), "original_time": info.get("timestamp"),
                    "database": None},
            database=database, sanitized=[],
        )
        snapshot.summary = {"total_size": sum(f.size for f in builder.files), "added_chunks": writer.stats.blobs,
                            "new_data_bytes": builder.new_data_bytes, "added_pack_bytes": writer.stats.file_bytes}
        save_snapshot(repo, snapshot)
    added = writer.stats.file_bytes + repo.snapshot_size(snapshot.id)
    return BackupResult(snapshot, added, writer.stats.blobs, builder.new_data_bytes, time.perf_counter() - started)
