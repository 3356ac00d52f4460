"""Taking a snapshot of an agent: capture each part, store new chunks, commit the manifest.

The parts land in the manifest under the paths of the documented backup folder,
so export only has to materialise them.  The parent is the newest snapshot of
the same agent and database; chunk lists are stored as patches on it.
"""
from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from .chunklist import ListRef, store_list
from .errors import SnapshotNotFound, SourceError
from .ingest import IngestResult, ingest_bytes, ingest_pages
from .manifest import FileEntry, Snapshot, content_digest, list_snapshots, safe_relpath, save_snapshot
from .repository import BlobReader, BlobWriter, Repository
from .sanitize import agent_environment, sanitize_env
from .sources.agent import AgentSource, redact_url
from .sources.sqlite import SQLiteImageReader

DB_PATH = "database/sqlite.db"
CONFIG_PATH = "config/mirix.yaml"
ENV_PATH = "config/environment.env"


@dataclass
class BackupResult:
    snapshot: Snapshot
    added_bytes: int
    added_chunks: int
    new_data_bytes: int
    duration_s: float

    def as_dict(self) -> dict:
        return {"snapshot_id": self.snapshot.id, "short_id": self.snapshot.short_id, "time": self.snapshot.time,
                "agent": self.snapshot.agent, "parent": self.snapshot.parent, "tags": self.snapshot.tags,
                "added_bytes": self.added_bytes, "added_chunks": self.added_chunks,
                "new_data_bytes": self.new_data_bytes, "total_size": self.snapshot.summary["total_size"],
                "files": len(self.snapshot.files), "duration_s": round(self.duration_s, 3)}


def find_parent(repo: Repository, source: AgentSource) -> Snapshot | None:
    candidates = [s for s in list_snapshots(repo)
                  if s.agent == source.name and s.source.get("database") == redact_url(source.database_url)]
    return candidates[-1] if candidates else None


class _SnapshotBuilder:
    """Collects file entries while chunks go into the writer."""

    def __init__(self, writer: BlobWriter, reader: BlobReader, parent: Snapshot | None):
        self.writer, self.reader = writer, reader
        self.parent_lists: dict[str, ListRef] = {f.path: f.chunks for f in parent.files} if parent else {}
        self.files: list[FileEntry] = []
        self.new_data_bytes = 0

    def add(self, path: str, result: IngestResult, chunker: str, *, mode: int = 0o600, mtime: float = 0.0,
            md5: bytes | None = None) -> FileEntry:
        ref = store_list(result.ids, self.writer, self.parent_lists.get(path), self.reader)
        entry = FileEntry(path=safe_relpath(path), size=result.size, chunker=chunker,
                          digest=content_digest(result.ids), chunks=ref, mode=mode, mtime=mtime, md5=md5)
        self.files.append(entry)
        self.new_data_bytes += result.new_bytes
        return entry

    def add_bytes(self, path: str, data: bytes, *, mode: int = 0o600, mtime: float = 0.0) -> FileEntry:
        return self.add(path, ingest_bytes(data, self.writer), "fastcdc-16k", mode=mode, mtime=mtime,
                        md5=hashlib.md5(data).digest())


def _log_files(log_dir: Path) -> Iterable[tuple[str, Path]]:
    """Regular files under ``log_dir``; symlinks are skipped so nothing outside is captured."""
    for path in sorted(log_dir.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield "logs/" + path.relative_to(log_dir).as_posix(), path


def _unchanged_database(parent: Snapshot | None, fingerprint: dict) -> FileEntry | None:
    """The parent's database entry when the file provably has not changed since (restic's
    and borg's files-cache idea, keyed on SQLite's own commit state as well as stat)."""
    if parent is None or not fingerprint or parent.database.get("fingerprint") != fingerprint:
        return None
    try:
        return parent.file(DB_PATH)
    except SnapshotNotFound:
        return None


def backup_agent(repo: Repository, source: AgentSource, *, include_logs: bool = False,
                 tags: Iterable[str] = (), progress: Callable[[int], None] | None = None,
                 read_all: bool = False) -> BackupResult:
    started = time.perf_counter()
    if not source.is_sqlite:
        raise SourceError(f"agent {source.name} uses {redact_url(source.database_url)}: "
                          "PostgreSQL capture is not available in this version")
    with repo.lock():
        parent = find_parent(repo, source)
        with repo.writer() as writer, repo.reader() as reader:
            builder = _SnapshotBuilder(writer, reader, parent)
            db_path = source.sqlite_path
            with SQLiteImageReader(db_path) as image:
                database = {"type": "sqlite", "page_size": image.page_size, "page_count": image.page_count,
                            "journal_mode": image.journal_mode, "fingerprint": image.fingerprint}
                unchanged = _unchanged_database(parent, image.fingerprint) if not read_all else None
                if unchanged is not None:
                    builder.files.append(unchanged)
                    if progress:
                        progress(image.size)
                else:
                    pages = ingest_pages(image, writer, progress)
                    builder.add(DB_PATH, pages, f"fixed-{image.page_size}", mtime=db_path.stat().st_mtime)
            if source.config_path is not None:
                builder.add_bytes(CONFIG_PATH, source.config_path.read_bytes(),
                                  mtime=source.config_path.stat().st_mtime)
            env_text = source.env_file.read_text() if source.env_file else None
            clean_env, removed = sanitize_env(agent_environment(env_text))
            builder.add_bytes(ENV_PATH, clean_env.encode())
            if include_logs and source.log_dir is not None:
                for rel, path in _log_files(source.log_dir):
                    try:
                        data = path.read_bytes()
                    except OSError as exc:
                        raise SourceError(f"cannot read log file {path}: {exc.strerror}") from None
                    builder.add_bytes(rel, data, mtime=path.stat().st_mtime)
        snapshot = Snapshot(
            time=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            host=socket.gethostname(), agent=source.name, files=builder.files, tags=sorted(set(tags)),
            parent=parent.id if parent else None,
            source={"database": redact_url(source.database_url),
                    "config": str(source.config_path) if source.config_path else None,
                    "include_logs": include_logs},
            database=database, sanitized=[f"{ENV_PATH}:{key}" for key in removed],
        )
        snapshot.summary = {
            "total_size": sum(f.size for f in builder.files),
            "added_chunks": writer.stats.blobs,
            "new_data_bytes": builder.new_data_bytes,
            "added_pack_bytes": writer.stats.file_bytes,
            "database_unchanged": unchanged is not None,
        }
        save_snapshot(repo, snapshot)
    added = writer.stats.file_bytes + repo.snapshot_size(snapshot.id)
    return BackupResult(snapshot, added, writer.stats.blobs, builder.new_data_bytes, time.perf_counter() - started)
