"""Space over time: what each snapshot holds and added, and what the repository stores.

* logical size — the bytes of the snapshot's files (what a restore writes);
* added — the bytes the backup wrote (packs, index, manifest): its share of the growth;
* repository totals — unique chunk bytes before and after compression, and the bytes on disk,
  giving the deduplication ratio (all snapshots' logical bytes / unique chunk bytes) and the
  compression ratio (unique chunk bytes / their compressed payloads).

After ``forget`` the packs still hold the forgotten snapshots' data (until ``snapstore prune`` frees it),
so ``unreferenced`` is reported as not known here rather than guessed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..manifest import Snapshot, list_snapshots
from ..repository import Repository


@dataclass
class SnapshotStats:
    id: str
    time: str
    host: str
    agent: str
    tags: list[str]
    logical_bytes: int
    added_bytes: int

    def as_dict(self) -> dict:
        return dict(self.__dict__, short_id=self.id[:8])


@dataclass
class RepositoryStats:
    snapshots: list[SnapshotStats] = field(default_factory=list)
    logical_bytes: int = 0       # sum over snapshots
    unique_bytes: int = 0        # distinct chunks, uncompressed
    stored_bytes: int = 0        # their compressed payloads
    disk_bytes: int = 0          # packs + index files + snapshot files
    chunks: int = 0

    @property
    def dedup_ratio(self) -> float:
        return self.logical_bytes / self.unique_bytes if self.unique_bytes else 0.0

    @property
    def compression_ratio(self) -> float:
        return self.unique_bytes / self.stored_bytes if self.stored_bytes else 0.0

    def growth(self) -> dict[str, list[dict]]:
        """Per agent (``agent@host``): time, logical size and cumulative added bytes."""
        out: dict[str, list[dict]] = {}
        for s in self.snapshots:
            series = out.setdefault(f"{s.agent}@{s.host}", [])
            total = (series[-1]["cumulative_added_bytes"] if series else 0) + s.added_bytes
            series.append({"time": s.time, "id": s.id[:8], "logical_bytes": s.logical_bytes,
                           "cumulative_added_bytes": total})
        return out

    def as_dict(self) -> dict:
        return {"snapshots": [s.as_dict() for s in self.snapshots],
                "repository": {"snapshots": len(self.snapshots), "logical_bytes": self.logical_bytes,
                               "unique_bytes": self.unique_bytes, "stored_bytes": self.stored_bytes,
                               "disk_bytes": self.disk_bytes, "chunks": self.chunks,
                               "dedup_ratio": round(self.dedup_ratio, 3),
                               "compression_ratio": round(self.compression_ratio, 3)},
                "growth": self.growth()}


def snapshot_added_bytes(snap: Snapshot, manifest_bytes: int) -> int:
    """What the backup wrote: its packs and index files (recorded at backup time) and its manifest."""
    return snap.summary.get("added_pack_bytes", 0) + manifest_bytes


def _prefix_bytes(repo: Repository, prefix: str) -> int:
    return sum(info.size for info in repo.storage.list(prefix))


def repository_stats(repo: Repository) -> RepositoryStats:
    with repo.lock():
        snaps = list_snapshots(repo)
        sizes = repo.snapshot_sizes()
        stats = RepositoryStats()
        stats.snapshots = [SnapshotStats(s.id, s.time, s.host, s.agent, s.tags, s.summary.get("total_size") or
                                         sum(f.size for f in s.files),
                                         snapshot_added_bytes(s, sizes.get(s.id, 0)))
                           for s in snaps]
        stats.logical_bytes = sum(s.logical_bytes for s in stats.snapshots)
        index = repo.index
        payloads: dict[tuple[bytes, int], int] = {}
        for _blob_id, loc in index.items():
            stats.unique_bytes += loc.plain_length
            payloads[(loc.pack_id, loc.offset)] = loc.stored_length
        stats.chunks = len(index)
        stats.stored_bytes = sum(payloads.values())
        stats.disk_bytes = sum(_prefix_bytes(repo, p) for p in ("data/", "index/", "snapshots/"))
    return stats
