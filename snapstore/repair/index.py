"""Rebuilding the index from the packs alone.

Each pack ends with its own blob table, so the index is only a cache.  The new
index file is written first; only then are the old ones removed, so a crash
leaves a repository with a valid (possibly duplicated) index either way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import IntegrityError
from ..repository import Repository
from ..repository.index import PackInfo
from ..repository.pack import BLOB_RECORD, pack_id_of, trailer_records


@dataclass
class RepairReport:
    packs: int = 0
    blobs: int = 0
    replaced_files: int = 0
    bad_packs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"packs": self.packs, "blobs": self.blobs, "replaced_index_files": self.replaced_files,
                "bad_packs": self.bad_packs}


def scan_packs(repo: Repository, report: RepairReport) -> list[PackInfo]:
    infos = []
    for obj in sorted(repo.storage.list("data/"), key=lambda o: o.name):
        pack_id = pack_id_of(obj.name)
        if pack_id is None:
            continue
        try:
            records = trailer_records(repo.storage, obj.name, obj.size, repo.cipher)
        except IntegrityError as exc:
            report.bad_packs.append(f"{obj.name.rsplit('/', 1)[-1][:16]}: {exc}")
            continue
        infos.append(PackInfo(pack_id, obj.size, records))
    return infos


def rebuild_index(repo: Repository) -> RepairReport:
    report = RepairReport()
    with repo.lock(exclusive=True):
        infos = scan_packs(repo, report)
        _new, report.replaced_files = repo.replace_index(infos)
    report.packs = len(infos)
    report.blobs = sum(len(i.records) // BLOB_RECORD.size for i in infos)
    return report
