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
from .packcheck import PackOutcome, PackTask, check_pack
from .report import DamageLog, VerifyReport
from .subset import ReadSubset
from .view import RepoView, blob_type_name

INLINE_BYTES = 48 * 1024 * 1024  # below this, forking workers costs more than it saves


def plan_tasks(view: RepoView, subset: ReadSubset | None, wanted: set[bytes] | None) -> list[PackTask]:
    """One task per pack to read: all packs on disk, or those holding ``wanted`` blobs; then the subset."""
    if wanted is None:
        pack_ids: Iterable[bytes] = view.disk_packs
        picked: dict[bytes, list] = {}
    else:
        picked = {}
        for blob_id in wanted:
            loc = view.blobs.get(blob_id)
            if loc is not None and loc[0] in view.disk_packs:
                picked.setdefault(loc[0], []).append((blob_id, *loc[1:]))
        pack_ids = picked
    if subset is not None:
        pack_ids = subset.select(pack_ids)
    tasks = []
    for pack_id in sorted(pack_ids):
        path = str(view.disk_packs[pack_id][0])
        records, size = view.pack_records.get(pack_id), view.pack_sizes.get(pack_id)
        tasks.append(PackTask(pack_id, path, records, size,
                              sorted(picked[pack_id], key=lambda r: (r[3], r[6])) if wanted is not None else None))
    return tasks


def run_tasks(tasks: list[PackTask], *, workers: int | None = None, sizes: dict[bytes, int] | None = None,
              progress: Callable[[int], None] | None = None) -> Iterable[PackOutcome]:
    total = sum((sizes or {}).get(t.pack_id, 0) for t in tasks)
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    if workers <= 1 or total < INLINE_BYTES:
        for task in tasks:
            out = check_pack(task)
            if progress:
                progress(out.bytes_read)
            yield out
        return
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = {pool.submit(check_pack, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                out = future.result()
            except BrokenProcessPool:
                out = PackOutcome(futures[future].pack_id, error="the checking process died")
            if progress:
                progress(out.bytes_read)
            yield out


def apply_outcome(view: RepoView, log: DamageLog, report: VerifyReport, task: PackTask, out: PackOutcome) -> int:
    """Record one pack's findings; returns how many blobs it found bad."""
    pid = out.pack_id
    if out.error is not None:
        report.unchecked.append(f"pack {pid.hex()[:16]}: {out.error}")
        return 0
    report.packs_read += 1
    report.blobs_read += out.blobs
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
