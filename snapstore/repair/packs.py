"""``repair packs``: re-hash the packs, salvage what is intact, stop trusting what is not.

With content addressing, damage heals by storing a blob again: every snapshot
that names its id is whole once some pack holds it.  A blob must therefore stop
being *known* when it is damaged, or backups keep deduplicating against it.
The steps, each durable before the next (docs/design.md, "Repairing packs"):

1. read every pack (or the named ones) and re-hash its blobs (worker processes);
   a pack is damaged when it is missing, does not hash to its name, has the
   wrong size or trailer, or holds a blob that does not match its hash;
2. copy the intact blobs of damaged packs into new packs through the normal
   ``BlobWriter`` (fsynced packs, then an index file naming them);
3. write one new index file naming every healthy pack and the new ones, and
   only then remove the old index files, so nothing lists a damaged blob;
4. delete the damaged packs, now in no index file;
5. report which snapshots lack blobs (a quick verify) and the files affected.

A kill at any point leaves a repository that is at worst as before plus
unreferenced packs; running the command again finishes the job.
"""
from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

import blake3
import zstandard

from ..crypto import PLAIN, Cipher
from ..errors import IntegrityError, UsageError
from ..repository import BlobWriter, Repository
from ..repository.blob import BlobDamage, check_blob, open_payload
from ..repository.index import PackInfo
from ..repository.pack import BLOB_RECORD, BLOB_TREE
from ..storage import ObjectNotFound
from ..verify import verify_repository
from ..verify.packcheck import PackOutcome, check_blobs, trailer_records
from ..workers import start_pool

Progress = Callable[[int], None]


@dataclass
class PackFinding:
    """What reading one pack showed (plain data: it comes back from a worker)."""

    pack_id: bytes
    size: int = 0
    blobs: int = 0
    problems: list[str] = field(default_factory=list)  # pack-level: missing, hash, size, trailer
    bad: set[bytes] = field(default_factory=set)  # blobs that do not match their hash
    trailer: bytes | None = None  # the pack's own records, if its trailer reads

    @property
    def damaged(self) -> bool:
        return bool(self.problems or self.bad)


@dataclass
class DamagedPack:
    pack_id: str
    problems: list[str]
    blobs: int
    bad_blobs: int
    salvaged: int

    def as_dict(self) -> dict:
        return {"pack": self.pack_id, "problems": self.problems, "blobs": self.blobs,
                "bad_blobs": self.bad_blobs, "salvaged": self.salvaged}


@dataclass
class PackRepairReport:
    packs_checked: int = 0
    blobs_checked: int = 0
    bytes_read: int = 0
    damaged: list[DamagedPack] = field(default_factory=list)
    salvaged_blobs: int = 0
    new_packs: int = 0
    lost_blobs: list[str] = field(default_factory=list)  # no longer in the index: a backup must store them again
    replaced_index_files: int = 0
    incomplete: dict[str, list[str]] = field(default_factory=dict)  # snapshot id -> damaged files

    def as_dict(self) -> dict:
        return {"packs_checked": self.packs_checked, "blobs_checked": self.blobs_checked,
                "bytes_read": self.bytes_read, "damaged_packs": [d.as_dict() for d in self.damaged],
                "salvaged_blobs": self.salvaged_blobs, "new_packs": self.new_packs,
                "lost_blobs": self.lost_blobs, "replaced_index_files": self.replaced_index_files,
                "incomplete_snapshots": [{"id": sid, "short_id": sid[:8], "files": files}
                                         for sid, files in sorted(self.incomplete.items())]}


# -- step 1: reading the packs -------------------------------------------------------

_worker_repo: Repository | None = None


def _init_worker(repo: Repository) -> None:
    global _worker_repo
    _worker_repo = repo


def check_pack_bytes(pack_id: bytes, buf: bytes, indexed: PackInfo | None, cipher: Cipher = PLAIN) -> PackFinding:
    """Judge one pack from its bytes, against the index's records if it is indexed."""
    found = PackFinding(pack_id, size=len(buf))
    if blake3.blake3(buf).digest() != pack_id:
        found.problems.append("does not hash to its name")
    if indexed is not None and indexed.size != len(buf):
        found.problems.append(f"{len(buf)} bytes, the index says {indexed.size}")
    try:
        found.trailer = trailer_records(buf, cipher)
    except IntegrityError as exc:
        found.problems.append(str(exc))
    records = indexed.records if indexed is not None else found.trailer
    if indexed is not None and found.trailer is not None and found.trailer != indexed.records:
        found.problems.append("trailer disagrees with the index")
    if records:
        out = PackOutcome(pack_id)
        check_blobs(buf, 0, list(BLOB_RECORD.iter_unpack(records)), out, cipher)
        found.blobs = out.blobs
        found.bad = {blob_id for blob_id, _type, _kind in out.bad}
    return found


def _check_one(task: tuple[bytes, PackInfo | None]) -> PackFinding:
    pack_id, indexed = task
    try:
        buf = _worker_repo.read_pack(pack_id)
    except ObjectNotFound:
        return PackFinding(pack_id, problems=["is missing"])
    return check_pack_bytes(pack_id, buf, indexed, _worker_repo.cipher)


def check_packs(repo: Repository, tasks: list[tuple[bytes, PackInfo | None]], progress: Progress | None,
                workers: int | None = None) -> list[PackFinding]:
    workers = max(1, workers or min(len(tasks), os.cpu_count() or 1, 4))
    findings = []
    ctx = multiprocessing.get_context("fork")
    with start_pool(ctx, workers, _init_worker, (repo,)) as pool:
        for found in pool.imap_unordered(_check_one, tasks):
            findings.append(found)
            if progress:
                progress(found.size)
    return findings


# -- step 2: salvage --------------------------------------------------------------------

def salvage_pack(buf: bytes, records: Iterable[tuple], bad: set[bytes], writer: BlobWriter) -> int:
    """Store again every intact blob of a damaged pack that no healthy pack holds; returns how many."""
    dctx = zstandard.ZstdDecompressor()
    cipher = writer.repo.cipher
    frames: dict[tuple[int, int], bytes | None] = {}
    salvaged = 0
    for blob_id, btype, codec, offset, slen, plen, inner in records:
        if blob_id in bad or writer.has(blob_id):
            continue
        key = (offset, slen)
        if key not in frames:
            try:
                frames[key] = open_payload(cipher, codec, buf[offset:offset + slen], dctx, "payload")
            except BlobDamage:
                frames[key] = None
        plain = frames[key]
        data = check_blob(cipher, blob_id, plain, inner, plen) if plain is not None else None
        if data is None:
            continue  # re-checked here: records from a trailer the check did not use
        writer.add(blob_id, bytes(data), BLOB_TREE if btype == BLOB_TREE else 0)
        salvaged += 1
    return salvaged


def _records(indexed: PackInfo | None, found: PackFinding) -> list[tuple]:
    """The blobs a damaged pack held: the index's records plus any only its trailer lists."""
    seen, out = set(), []
    for table in (indexed.records if indexed else b"", found.trailer or b""):
        for rec in BLOB_RECORD.iter_unpack(table):
            if rec[0] not in seen:
                seen.add(rec[0])
                out.append(rec)
    return out


# -- the whole repair -------------------------------------------------------------------

def _select(refs: Iterable[str] | None, known: set[bytes]) -> list[bytes]:
    if not refs:
        return sorted(known)
    picked = []
    for ref in refs:
        ref = ref.lower()
        matches = [pid for pid in known if pid.hex().startswith(ref)] if len(ref) >= 4 else []
        if len(matches) != 1:
            what = "no pack" if not matches else f"{len(matches)} packs"
            raise UsageError(f"{what} in the repository match {ref!r} (give at least 4 hex digits of a pack id)")
        picked.append(matches[0])
    return sorted(set(picked))


def _incomplete(repo: Repository) -> dict[str, list[str]]:
    """Snapshots that name blobs no longer indexed, with their files (a quick verify, under our lock)."""
    report = verify_repository(repo)
    return {sid: sorted(paths) for sid, paths in report.damaged_snapshots().items()}


def repair_packs(repo: Repository, pack_refs: Iterable[str] | None = None, *,
                 progress: Progress | None = None, workers: int | None = None) -> PackRepairReport:
    report = PackRepairReport()
    with repo.lock(exclusive=True):
        repo.remove_stale_temps()
        index = repo.index
        indexed = {p.pack_id: p for p in index.pack_infos()}
        on_disk = repo.pack_ids()
        targets = _select(pack_refs, on_disk | indexed.keys())
        if progress is not None and hasattr(progress, "total") and all(p in indexed for p in targets):
            progress.total = sum(indexed[p].size for p in targets if p in on_disk)
        findings = check_packs(repo, [(p, indexed.get(p)) for p in targets if p in on_disk], progress, workers)
        findings += [PackFinding(p, problems=["is missing"]) for p in targets if p not in on_disk]
        report.packs_checked = len(findings)
        report.blobs_checked = sum(f.blobs for f in findings)
        report.bytes_read = sum(f.size for f in findings)
        damaged = {f.pack_id: f for f in findings if f.damaged}
        if damaged:
            keep = index.without(set(damaged))
            healthy = keep.pack_infos()  # before the writer adds its packs to ``keep``
            with repo.writer(keep) as writer:
                for pack_id in sorted(damaged):
                    found = damaged[pack_id]
                    records = _records(indexed.get(pack_id), found)
                    salvaged = 0
                    if pack_id in on_disk:
                        salvaged = salvage_pack(repo.read_pack(pack_id), records, found.bad, writer)
                    report.damaged.append(DamagedPack(pack_id.hex(), found.problems, len(records),
                                                      len(found.bad), salvaged))
                    report.salvaged_blobs += salvaged
            report.new_packs = len(writer.written)
            lost = {rec[0] for f in damaged.values() for rec in _records(indexed.get(f.pack_id), f)}
            report.lost_blobs = sorted(b.hex() for b in lost if not writer.has(b))
            _new, report.replaced_index_files = repo.replace_index(healthy + writer.written)
            for pack_id in sorted(damaged):
                if pack_id in on_disk:
                    repo.delete_pack(pack_id)
        report.incomplete = _incomplete(repo)
    return report
