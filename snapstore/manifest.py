"""Snapshot manifests: one msgpack document per snapshot, the tree of the folder layout.

A manifest names every file of the documented backup folder (``database/sqlite.db``,
``config/mirix.yaml``, ``logs/agent.log``...) with its size, how it was chunked,
a content digest and its chunk list (chunklist.py).  The content digest is the
BLAKE3 of the concatenated chunk ids, so ``verify --full`` can re-derive every
file's identity from re-hashed chunks without reassembling the file.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import blake3
import msgpack

from .chunklist import ListRef
from .errors import AmbiguousSnapshot, IntegrityError, SnapshotNotFound, UnsafePath, UnsupportedFormat
from .repository import Repository
from .storage import ObjectNotFound

MANIFEST_VERSION = 1


def safe_relpath(path: str) -> str:
    """A folder-relative POSIX path, refusing anything that could escape the folder."""
    if not path or "\x00" in path or "\\" in path:
        raise UnsafePath(f"unsafe path in snapshot or folder: {path!r}")
    norm = posixpath.normpath(path)
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or norm != path:
        raise UnsafePath(f"unsafe path in snapshot or folder: {path!r}")
    return norm


@dataclass
class FileEntry:
    path: str
    size: int
    chunker: str
    digest: bytes
    chunks: ListRef
    mode: int = 0o600
    mtime: float = 0.0
    md5: bytes | None = None

    def to_doc(self) -> dict:
        doc = {"path": self.path, "size": self.size, "chunker": self.chunker, "digest": self.digest,
               "chunks": self.chunks.to_doc(), "mode": self.mode, "mtime": self.mtime}
        if self.md5 is not None:
            doc["md5"] = self.md5
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> "FileEntry":
        return cls(path=safe_relpath(doc["path"]), size=doc["size"], chunker=doc["chunker"],
                   digest=doc["digest"], chunks=ListRef.from_doc(doc["chunks"]), mode=doc.get("mode", 0o600),
                   mtime=doc.get("mtime", 0.0), md5=doc.get("md5"))


def content_digest(ids: bytes) -> bytes:
    return blake3.blake3(ids).digest()


@dataclass
class Snapshot:
    time: str
    host: str
    agent: str
    files: list[FileEntry]
    tags: list[str] = field(default_factory=list)
    parent: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    database: dict[str, Any] = field(default_factory=dict)
    sanitized: list[str] = field(default_factory=list)
    id: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise SnapshotNotFound(f"snapshot {self.short_id} has no file {path!r}")

    def to_bytes(self) -> bytes:
        return msgpack.packb({
            "v": MANIFEST_VERSION, "time": self.time, "host": self.host, "agent": self.agent,
            "tags": self.tags, "parent": self.parent, "source": self.source, "summary": self.summary,
            "database": self.database, "sanitized": self.sanitized,
            "files": [f.to_doc() for f in self.files],
        })

    @classmethod
    def from_bytes(cls, data: bytes, snapshot_id: str) -> "Snapshot":
        try:
            doc = msgpack.unpackb(data)
            version = doc["v"]
        except Exception as exc:
            raise IntegrityError(f"snapshot {snapshot_id[:8]} manifest is unreadable: {exc}") from None
        if version > MANIFEST_VERSION:
            raise UnsupportedFormat(f"snapshot {snapshot_id[:8]} has manifest version {version}, "
                                    f"newer than this snapstore supports ({MANIFEST_VERSION})")
        try:
            return cls(time=doc["time"], host=doc["host"], agent=doc["agent"], tags=list(doc["tags"]),
                       parent=doc["parent"], source=doc["source"], summary=doc["summary"],
                       database=doc["database"], sanitized=list(doc.get("sanitized", [])),
                       files=[FileEntry.from_doc(f) for f in doc["files"]], id=snapshot_id)
        except (KeyError, TypeError) as exc:
            raise IntegrityError(f"snapshot {snapshot_id[:8]} manifest is malformed: missing {exc}") from None


def save_snapshot(repo: Repository, snapshot: Snapshot) -> str:
    snapshot.id = repo.write_snapshot_file(snapshot.to_bytes())
    return snapshot.id


def load_snapshot(repo: Repository, snapshot_id: str) -> Snapshot:
    try:
        data = repo.read_snapshot_file(snapshot_id)
    except ObjectNotFound:
        raise SnapshotNotFound(f"no snapshot {snapshot_id[:8]} in {repo.location}") from None
    return Snapshot.from_bytes(data, snapshot_id)


def list_snapshots(repo: Repository, problems: list[str] | None = None) -> list[Snapshot]:
    """All snapshots, oldest first.  With ``problems``, an unreadable manifest is noted
    there and skipped (so one damaged snapshot does not hide the others); else it raises."""
    snaps = []
    for sid in repo.snapshot_ids():
        try:
            snaps.append(load_snapshot(repo, sid))
        except (IntegrityError, UnsupportedFormat) as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    snaps.sort(key=lambda s: (s.time, s.id))
    return snaps


SAFETY_TAG = "pre-restore"  # a snapshot a restore took of what it was about to overwrite


@dataclass(frozen=True)
class Selection:
    """Whose snapshots a command means: ``--agent``/``--host`` filters (None: any).

    One rule for every command and the Python API: ``latest`` is the newest snapshot
    (safety snapshots passed over) of the selected agent on the selected host, and
    an error, never a guess, when the selection still spans several agents or
    hosts: a nightly ``export latest`` must not export another agent's memory.
    """
    agent: str | None = None
    host: str | None = None
    at: datetime | None = None  # point in time (aware): only snapshots taken at or before it

    def matches(self, snap: Snapshot) -> bool:
        return ((self.agent is None or snap.agent == self.agent) and (self.host is None or snap.host == self.host)
                and (self.at is None or datetime.fromisoformat(snap.time) <= self.at))

    def describe(self) -> str:
        parts = [f"agent {self.agent}" if self.agent else "", f"host {self.host}" if self.host else ""]
        what = " on ".join(p for p in parts if p) or "any agent"
        return what + (f" taken at or before {self.at.isoformat(sep=' ', timespec='seconds')}" if self.at else "")

    def check(self, snap: Snapshot) -> Snapshot:
        """``snap`` (named by id) if it is in the selection, else a one-line refusal."""
        if not self.matches(snap):
            raise SnapshotNotFound(f"snapshot {snap.short_id} is of agent {snap.agent} on host {snap.host}, "
                                   f"not of {self.describe()}")
        return snap


def latest_of(snaps: list[Snapshot], selection: Selection = Selection()) -> Snapshot:
    """The newest selected snapshot that is not a safety snapshot (the newest of all if they all are)."""
    chosen = [s for s in snaps if selection.matches(s)]
    if not chosen:
        if selection.at is not None and any(Selection(selection.agent, selection.host).matches(s) for s in snaps):
            raise SnapshotNotFound(f"no snapshots of {selection.describe()}")
        if not snaps:
            raise SnapshotNotFound("the repository has no snapshots yet")
        held = ", ".join(sorted({f"{s.agent} (host {s.host})" for s in snaps}))
        raise SnapshotNotFound(f"no snapshots of {selection.describe()}; the repository holds {held}: "
                               "pass --agent/--host")
    regular = [s for s in chosen if SAFETY_TAG not in s.tags] or chosen
    agents = sorted({s.agent for s in regular})
    if len(agents) > 1:
        raise AmbiguousSnapshot(f"'latest' is ambiguous: the repository holds snapshots of agents "
                                f"{', '.join(agents)}; pass --agent NAME")
    hosts = sorted({s.host for s in regular})
    if len(hosts) > 1:
        raise AmbiguousSnapshot(f"'latest' is ambiguous: agent {agents[0]} has snapshots from hosts "
                                f"{', '.join(hosts)}; pass --host NAME")
    return max(regular, key=lambda s: (s.time, s.id))


def resolve_snapshot(repo: Repository, ref: str, selection: Selection = Selection()) -> Snapshot:
    """``latest``, a full id, or a unique id prefix (at least 4 characters), within ``selection``.

    ``latest`` is the newest selected snapshot that is not a restore's safety snapshot
    (tag ``pre-restore``): a second ``restore latest`` must not undo the first.
    Only safety snapshots selected: the newest of those.  See ``Selection``.
    """
    if ref.lower() == "latest":
        snaps = list_snapshots(repo)
        if not snaps:
            raise SnapshotNotFound(f"the repository at {repo.location} has no snapshots yet")
        return latest_of(snaps, selection)
    return selection.check(load_snapshot(repo, match_id(repo.snapshot_ids(), ref, repo.location)))


def match_id(ids: list[str], ref: str, where: object) -> str:
    """The one id starting with ``ref`` (at least 4 characters)."""
    ref = ref.lower()
    if len(ref) < 4:
        raise SnapshotNotFound(f"snapshot id {ref!r} is too short: give at least 4 characters (or 'latest')")
    matches = [sid for sid in ids if sid.startswith(ref)]
    if not matches:
        raise SnapshotNotFound(f"no snapshot {ref!r} in {where}")
    if len(matches) > 1:
        raise SnapshotNotFound(f"snapshot id {ref!r} is ambiguous ({len(matches)} matches); give more characters")
    return matches[0]
