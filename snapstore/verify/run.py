"""verify_repository and verify_snapshot: the order of the checks.

1. Load the index files and stat every pack (``view``): quick verdicts.
2. Read the manifests to check (``snapshots``).
3. Walk every file's chunk list (``walk``), judging each chunk by the verdicts.
4. Full mode: read the packs (``packpass``) — all of them, a ``--read-subset``
   of them, or, for named snapshots, only the blobs the walk found they need.
   A whole-repository pass runs in worker processes *while* the parent walks
   (and re-derives digests); if the pass changes any verdict, the walk is done
   again so that every bad chunk is attributed to the snapshots and files it
   damages.

The repository lock is held shared throughout, so a prune cannot delete packs
under the check and make it report damage that is not there.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

from ..manifest import Selection, Snapshot
from ..repository import Repository
from .packpass import PackPass, apply_outcome, plan_tasks
from .reader import TreeReader
from .report import DamageLog, VerifyReport
from .snapshots import load_manifests
from .subset import ReadSubset, parse_read_subset
from .view import RepoView, load_view
from .walk import StructureWalk

Progress = Callable[[int], None]


def _start_pass(view: RepoView, subset: ReadSubset | None, wanted: set[bytes] | None,
                progress: Progress | None, workers: int | None) -> PackPass:
    sizes = {pid: size for pid, (_path, size) in view.disk_packs.items()}
    packs = PackPass(view.repo.storage, plan_tasks(view, subset, wanted), sizes=sizes, workers=workers, progress=progress,
                     cipher=view.repo.cipher)
    if progress is not None and hasattr(progress, "total"):
        progress.total = packs.total  # lets a meter show a percentage
    return packs


def _finish_pass(packs: PackPass, view: RepoView, log: DamageLog, report: VerifyReport) -> int:
    """Apply every task's findings; returns how many verdicts changed."""
    changed = 0
    read: set[bytes] = set()
    with packs:
        for task, out in packs.results():
            changed += apply_outcome(view, log, report, task, out)
            if out.error is None:
                read.add(out.pack_id)
    report.packs_read = len(read)
    return changed


def verify_repository(repo: Repository, *, full: bool = False, read_subset: str | ReadSubset | None = None,
                      snapshot_ids: Iterable[str | Snapshot] | None = None, progress: Progress | None = None,
                      workers: int | None = None, selection: Selection = Selection()) -> VerifyReport:
    """Check the repository (or only ``snapshot_ids``); never raises for damage, see ``VerifyReport``.

    ``full`` reads and re-hashes every blob; ``read_subset`` ("K/N" or "P%")
    implies it and reads only that share of the packs.  ``progress`` is called
    with the bytes of every pack range read.  ``selection`` limits the check to
    one agent's/host's snapshots (``latest`` as in ``manifest.Selection``).
    """
    started = time.perf_counter()
    subset = parse_read_subset(read_subset) if read_subset is not None else None
    full = full or subset is not None
    report = VerifyReport("full" if full else "quick", read_subset=subset.text if subset else None)
    log = DamageLog()
    if full:
        repo = repo.uncached()  # a full check reads what the repository holds, never a local copy
    with repo.lock():
        view = load_view(repo, log, report)
        snaps = load_manifests(repo, snapshot_ids, log, report, selection)
        with TreeReader(view) as reader:
            wanted = set() if full and (snapshot_ids is not None or selection != Selection()) else None
            packs = _start_pass(view, subset, None, progress, workers) if full and wanted is None else None
            try:
                walk = StructureWalk(view, reader, log, derive_digests=full, collect=wanted)
                walk.run(snaps)
                if wanted is not None:
                    packs = _start_pass(view, subset, wanted, progress, workers)
                changed = _finish_pass(packs, view, log, report) if packs is not None else 0
            finally:
                if packs is not None:
                    packs.close()
            if changed:
                walk.commit(chunks=False)  # its digest checks stand; its chunk verdicts are stale
                walk = StructureWalk(view, reader, log)
                walk.run(snaps)
            walk.commit()
    report.files, report.chunks = walk.files, walk.chunks
    report.damage = log.entries()
    report.duration_s = time.perf_counter() - started
    return report


def verify_snapshot(repo: Repository, snapshot: str | Snapshot, *, progress: Progress | None = None) -> VerifyReport:
    """Full re-read of the blobs one snapshot needs (what ``backup --verify`` runs)."""
    return verify_repository(repo, full=True, snapshot_ids=[snapshot], progress=progress)
