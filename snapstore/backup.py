"""Taking a snapshot of an agent: capture each part, store new chunks, commit the manifest.

The parts land in the manifest under the paths of the documented backup folder,
so export only has to materialise them.  The parent is the newest snapshot of
the same agent, host and database; chunk lists are stored as patches on it.
Every snapshot records its host (``host=``, as restic's ``--host``, else the
machine's name) so that many hosts can share a repository.
"""
from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from .chunklist import ListRef, all_stored, store_list
from .errors import SourceError
from .ingest import IngestResult, ingest_bytes
from .manifest import FileEntry, Snapshot, content_digest, list_snapshots, safe_relpath, save_snapshot
from .repository import BlobReader, BlobWriter, Repository
from .sources.agent import AgentSource, redact_url
from .sources.base import database_capture
from .sources.sqlite_capture import DB_PATH

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
                "agent": self.snapshot.agent, "host": self.snapshot.host, "parent": self.snapshot.parent,
                "tags": self.snapshot.tags,
                "added_bytes": self.added_bytes, "added_chunks": self.added_chunks,
                "new_data_bytes": self.new_data_bytes, "total_size": self.snapshot.summary["total_size"],
                "files": len(self.snapshot.files), "duration_s": round(self.duration_s, 3)}


def find_parent(snaps: list[Snapshot], source: AgentSource, host: str) -> Snapshot | None:
    candidates = [s for s in snaps if s.agent == source.name and s.host == host
                  and s.source.get("database") == redact_url(source.database_url)]
    return candidates[-1] if candidates else None


def known_agent(snaps: list[Snapshot], source: AgentSource) -> str | None:
    """The agent earlier snapshots of ``source``'s database were taken as (the newest's)."""
    url = redact_url(source.database_url)
    named = [s.agent for s in snaps if s.source.get("database") == url]
    return named[-1] if named else None


class SnapshotBuilder:
    """Collects file entries while chunks go into the writer."""

    def __init__(self, writer: BlobWriter, reader: BlobReader, parent: Snapshot | None):
        self.writer, self.reader = writer, reader
        self.parent_lists: dict[str, ListRef] = {f.path: f.chunks for f in parent.files} if parent else {}
        self.files: list[FileEntry] = []

    def add(self, path: str, result: IngestResult, chunker: str, *, mode: int = 0o600, mtime: float = 0.0,
            md5: bytes | None = None) -> FileEntry:
        ref = store_list(result.ids, self.writer, self.parent_lists.get(path), self.reader)
        entry = FileEntry(path=safe_relpath(path), size=result.size, chunker=chunker,
                          digest=content_digest(result.ids), chunks=ref, mode=mode, mtime=mtime, md5=md5)
        self.files.append(entry)
        return entry

    def reuse(self, entry: FileEntry) -> bool:
        """Take the parent's entry as it is (the content provably did not change), unless a
        blob it names is no longer stored: after ``repair packs`` dropped damaged chunks, or
        a pack went missing, the caller reads the content so that they are stored again."""
        if not all_stored(entry.chunks, self.writer, self.reader):
            return False
        self.files.append(entry)
        return True

    @property
    def new_data_bytes(self) -> int:
        """File content this backup was the first to store (see ``WriteStats``)."""
        return self.writer.stats.data_bytes

    def add_bytes(self, path: str, data: bytes, *, mode: int = 0o600, mtime: float = 0.0) -> FileEntry:
        return self.add(path, ingest_bytes(data, self.writer), "fastcdc-16k", mode=mode, mtime=mtime,
                        md5=hashlib.md5(data).digest())


def log_files(log_dir: Path) -> Iterable[tuple[str, Path]]:
    """Regular files under ``log_dir``; symlinks are skipped so nothing outside is captured."""
    for path in sorted(log_dir.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield "logs/" + path.relative_to(log_dir).as_posix(), path


def read_env_file(path: Path | None) -> tuple[bytes, float]:
    """The agent's environment settings as they are (empty when it has none): the repository
    gives back what the agent had; exports sanitise them (``sanitize.sanitize_file``)."""
    if path is None:
        return b"", 0.0
    try:
        return path.read_bytes(), path.stat().st_mtime
    except OSError as exc:
        raise SourceError(f"cannot read environment file {path}: {exc.strerror or exc}") from None


def backup_agent(repo: Repository, source: AgentSource, *, include_logs: bool = False,
                 tags: Iterable[str] = (), progress: Callable[[int], None] | None = None,
                 read_all: bool = False, host: str | None = None, capture=None) -> BackupResult:
    """``capture``: how the database is read (default: its engine's ``database_capture``;
    ``snapstore watch`` passes one that reads only the pages changed since its last snapshot)."""
    started = time.perf_counter()
    host = host or socket.gethostname()
    capture = capture or database_capture(source.database_url)
    with repo.lock():
        snaps = list_snapshots(repo)
        if source.name_is_default:  # a bare database file keeps the name its history has
            source.name = known_agent(snaps, source) or source.name
        parent = find_parent(snaps, source, host)
        with repo.writer() as writer, repo.reader() as reader:
            builder = SnapshotBuilder(writer, reader, parent)
            database = capture.capture(builder, parent, progress, read_all)
            if source.config_path is not None:
                builder.add_bytes(CONFIG_PATH, source.config_path.read_bytes(),
                                  mtime=source.config_path.stat().st_mtime)
            env_bytes, env_mtime = read_env_file(source.env_file)
            builder.add_bytes(ENV_PATH, env_bytes, mtime=env_mtime)
            if include_logs and source.log_dir is not None:
                for rel, path in log_files(source.log_dir):
                    try:
                        data = path.read_bytes()
                    except OSError as exc:
                        raise SourceError(f"cannot read log file {path}: {exc.strerror}") from None
                    builder.add_bytes(rel, data, mtime=path.stat().st_mtime)
        snapshot = Snapshot(
            time=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            host=host, agent=source.name, files=builder.files, tags=sorted(set(tags)),
            parent=parent.id if parent else None,
            source={"database": redact_url(source.database_url),
                    "config": str(source.config_path) if source.config_path else None,
                    "include_logs": include_logs},
            database=database, sanitized=[],
        )
        snapshot.summary = {
            "total_size": sum(f.size for f in builder.files),
            "added_chunks": writer.stats.blobs,
            "new_data_bytes": builder.new_data_bytes,
            "added_pack_bytes": writer.stats.file_bytes,
            "database_unchanged": database.pop("unchanged", False),
        }
        save_snapshot(repo, snapshot)
    added = writer.stats.file_bytes + repo.snapshot_size(snapshot.id)
    return BackupResult(snapshot, added, writer.stats.blobs, builder.new_data_bytes, time.perf_counter() - started)
