"""The pack pass of ``verify --full``: every selected pack read once, in parallel.

Packs are checked in forked worker processes (decompression and per-blob BLAKE3
of 4 KiB pages hold the GIL between calls), one pack per task, so each worker
does large sequential reads.  Results come back as plain lists; the parent turns
them into causes in the damage log and verdicts in ``RepoView.bad``, replacing
the quick verdicts of the packs it read (a truncated pack is then reported blob
by blob: the blobs before the cut are fine).  It runs before the structure walk
so that the walk attributes what it found to snapshots and files.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable

from ..repository.pack import BLOB_RECORD
from .packcheck import PackOutcome, PackTask, Record, check_pack
from .report import DamageLog, VerifyReport
from .subset import ReadSubset
from .view import RepoView, blob_type_name

INLINE_BYTES = 4 * 1024 * 1024  # below this, forking workers costs more than it saves
SPLIT_BYTES = 8 * 1024 * 1024  # blob ranges of about this much payload (~40 MB of pages) per task


def _ranges(records: list[Record]) -> list[list[Record]]:
    """Split records (sorted by offset) into runs of about SPLIT_BYTES of payload, at payload boundaries."""
    runs: list[list[Record]] = []
    run: list[Record] = []
    for rec in records:
        if run and rec[3] != run[-1][3] and rec[3] + rec[4] - run[0][3] > SPLIT_BYTES:
            runs.append(run)
            run = []
        run.append(rec)
    if run:
        runs.append(run)
    return runs


def plan_tasks(view: RepoView, subset: ReadSubset | None, wanted: set[bytes] | None) -> list[PackTask]:
    """The tasks reading the packs to check: all packs on disk, or only the ``wanted`` blobs; then the subset.

    Big packs become one pack-level task plus blob ranges, so that both cores work on one pack.
    """
    picked: dict[bytes, list[Record]] = {}
    if wanted is None:
        pack_ids: Iterable[bytes] = view.disk_packs
    else:
        for blob_id in wanted:
            loc = view.blobs.get(blob_id)
            if loc is not None and loc[0] in view.disk_packs:
                picked.setdefault(loc[0], []).append((blob_id, *loc[1:]))
        pack_ids = picked
    if subset is not None:
        pack_ids = subset.select(pack_ids)
    tasks = []
    for pack_id in sorted(pack_ids):
        path, disk_size = view.disk_packs[pack_id]
        records, size = view.pack_records.get(pack_id), view.pack_sizes.get(pack_id)
        if wanted is not None:
            blobs = sorted(picked[pack_id], key=lambda r: (r[3], r[6]))
            tasks.extend(PackTask(pack_id, str(path), records, size, wanted=run) for run in _ranges(blobs))
        elif records is None or disk_size <= SPLIT_BYTES:
            tasks.append(PackTask(pack_id, str(path), records, size))
        else:
            tasks.append(PackTask(pack_id, str(path), records, size, blobs=False))
            blobs = sorted(BLOB_RECORD.iter_unpack(records), key=lambda r: (r[3], r[6]))
            tasks.extend(PackTask(pack_id, str(path), records, size, wanted=run) for run in _ranges(blobs))
    return tasks


def task_bytes(task: PackTask, sizes: dict[bytes, int] | None) -> int:
    if task.wanted is not None:
        return task.wanted[-1][3] + task.wanted[-1][4] - task.wanted[0][3]
    return (sizes or {}).get(task.pack_id, 0)


def run_tasks(tasks: list[PackTask], *, workers: int | None = None, sizes: dict[bytes, int] | None = None,
              progress: Callable[[int], None] | None = None) -> Iterable[tuple[PackTask, PackOutcome]]:
    total = sum(task_bytes(t, sizes) for t in tasks)
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    if workers <= 1 or total < INLINE_BYTES:
        for task in tasks:
            out = check_pack(task)
            if progress:
                progress(task_bytes(task, sizes))
            yield task, out
        return
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        # in pack order: a pack's pack-level task and its blob ranges run side by side, so
        # whichever reads a region second finds it in the page cache
        futures = {pool.submit(check_pack, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                out = future.result()
            except BrokenProcessPool:
                out = PackOutcome(futures[future].pack_id, error="the checking process died")
            if progress:
                progress(task_bytes(futures[future], sizes))
            yield futures[future], out


def apply_outcome(view: RepoView, log: DamageLog, report: VerifyReport, task: PackTask, out: PackOutcome) -> int:
    """Record one task's findings; returns how many blobs it found bad."""
    pid = out.pack_id
    if out.error is not None:
        problem = f"pack {pid.hex()[:16]}: {out.error}"
        if problem not in report.unchecked:
            report.unchecked.append(problem)
        return 0
    report.blobs_read += out.blobs
    if task.blobs or task.wanted is not None:  # a split pack's hash pass re-reads it: counted once
        report.bytes_read += out.bytes_read
    if ("pack-missing", "") in out.problems:  # vanished since the stat: keep the quick verdicts
        log.cause("pack-missing", pack=pid)
        return 0
    checked = ([r[0] for r in task.wanted] if task.wanted is not None
               else [r[0] for r in BLOB_RECORD.iter_unpack(task.records or b"")])
    for blob_id in checked:
        cause = view.bad.get(blob_id)
        if cause is not None and cause.kind == "pack-size" and cause.pack == pid.hex():
            del view.bad[blob_id]  # the read says exactly which of them are bad
    for kind, detail in out.problems:
        log.cause(kind, pack=pid, detail=detail)
    for blob_id, btype, kind in out.bad:
        cause = log.cause(kind, pack=pid, blob_type=blob_type_name(btype))
        cause.blobs.add(blob_id.hex())
        loc = view.blobs.get(blob_id)
        if loc is not None and loc[0] == pid:
            view.bad[blob_id] = cause
    return len(out.bad)
