"""verify_repository and verify_snapshot: the order of the checks.

1. Load the index files and stat every pack (``view``): quick verdicts.
2. Read the manifests to check (``snapshots``).
3. Full mode: read the packs (``packpass``) — all of them, a ``--read-subset``
   of them, or, for named snapshots, only the blobs those snapshots need (found
   by a first, collecting walk).
4. Walk every file's chunk list (``walk``), attributing every bad chunk to the
   snapshots and files it damages; in full mode also re-derive each digest.

The repository lock is held shared throughout, so a prune cannot delete packs
under the check and make it report damage that is not there.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

from ..manifest import Snapshot
from ..repository import Repository
from .packpass import apply_outcome, plan_tasks, run_tasks, task_bytes
from .reader import TreeReader
from .report import DamageLog, VerifyReport
from .snapshots import load_manifests
from .subset import ReadSubset, parse_read_subset
from .view import RepoView, load_view
from .walk import StructureWalk

Progress = Callable[[int], None]


def _pack_pass(view: RepoView, log: DamageLog, report: VerifyReport, subset: ReadSubset | None,
               wanted: set[bytes] | None, progress: Progress | None, workers: int | None) -> None:
    tasks = plan_tasks(view, subset, wanted)
    sizes = {pid: size for pid, (_path, size) in view.disk_packs.items()}
    if progress is not None and hasattr(progress, "total"):
        progress.total = sum(task_bytes(t, sizes) for t in tasks)  # lets a meter show a percentage
    read: set[bytes] = set()
    for task, out in run_tasks(tasks, workers=workers, sizes=sizes, progress=progress):
        apply_outcome(view, log, report, task, out)
        if out.error is None:
            read.add(out.pack_id)
    report.packs_read = len(read)


def verify_repository(repo: Repository, *, full: bool = False, read_subset: str | ReadSubset | None = None,
                      snapshot_ids: Iterable[str | Snapshot] | None = None, progress: Progress | None = None,
                      workers: int | None = None) -> VerifyReport:
    """Check the repository (or only ``snapshot_ids``); never raises for damage, see ``VerifyReport``.

    ``full`` reads and re-hashes every blob; ``read_subset`` ("K/N" or "P%")
    implies it and reads only that share of the packs.  ``progress`` is called
    with the bytes of every pack read.
    """
    started = time.perf_counter()
    subset = parse_read_subset(read_subset) if read_subset is not None else None
    full = full or subset is not None
    report = VerifyReport("full" if full else "quick", read_subset=subset.text if subset else None)
    log = DamageLog()
    with repo.lock():
        view = load_view(repo, log, report)
        snaps = load_manifests(repo, snapshot_ids, log, report)
        with TreeReader(view) as reader:
            if full:
                wanted = None
                if snapshot_ids is not None:
                    wanted = set()
                    StructureWalk(view, reader, DamageLog(), collect=wanted).run(snaps)
                _pack_pass(view, log, report, subset, wanted, progress, workers)
            walk = StructureWalk(view, reader, log, derive_digests=full)
            walk.run(snaps)
    report.files, report.chunks = walk.files, walk.chunks
    report.damage = log.entries()
    report.duration_s = time.perf_counter() - started
    return report


def verify_snapshot(repo: Repository, snapshot: str | Snapshot, *, progress: Progress | None = None) -> VerifyReport:
    """Full re-read of the blobs one snapshot needs (what ``backup --verify`` runs)."""
    return verify_repository(repo, full=True, snapshot_ids=[snapshot], progress=progress)
