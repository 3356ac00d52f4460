"""The pack pass of ``verify --full``: every selected pack read once, in parallel.

Packs are checked in forked worker processes (decompression and per-blob BLAKE3
of 4 KiB pages hold the GIL between calls).  A big pack is cut into a pack-level
task and blob ranges of about ``SPLIT_BYTES``, so that both cores share it and
every task is one large sequential read.  The workers start as soon as the pass
is created, so the caller walks the snapshots meanwhile.  Results come back as
plain lists; the parent turns them into causes in the damage log and verdicts
in ``RepoView.bad``, replacing the quick verdicts of the packs it read (a
truncated pack is then reported blob by blob: the blobs before the cut are fine).
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator

from ..repository.pack import BLOB_RECORD
from ..storage import Storage
from ..workers import ignore_interrupts, interrupts_deferred
from ..crypto.cipher import PLAIN, Cipher
from .packcheck import PackOutcome, PackTask, check_pack, use_storage
from .report import DamageLog, VerifyReport
from .subset import ReadSubset
from .view import RepoView, blob_type_name

INLINE_BYTES = 4 * 1024 * 1024  # below this, forking workers costs more than it saves
SPLIT_BYTES = 8 * 1024 * 1024  # blob ranges of about this much payload (~40 MB of pages) per task


def _offset(records: bytes, i: int) -> int:
    return BLOB_RECORD.unpack_from(records, i * BLOB_RECORD.size)[3]


def split_records(records: bytes) -> list[bytes]:
    """Cut records in payload order into slices of about SPLIT_BYTES of payload, at payload boundaries."""
    n = len(records) // BLOB_RECORD.size
    if n == 0:
        return []
    cuts = [0]
    while True:
        lo, hi = cuts[-1] + 1, n
        target = _offset(records, cuts[-1]) + SPLIT_BYTES
        while lo < hi:  # first record at or past the target: it starts a new payload
            mid = (lo + hi) // 2
            if _offset(records, mid) < target:
                lo = mid + 1
            else:
                hi = mid
        if lo >= n:
            break
        cuts.append(lo)
    cuts.append(n)
    return [records[a * BLOB_RECORD.size:b * BLOB_RECORD.size] for a, b in zip(cuts, cuts[1:])]


def plan_tasks(view: RepoView, subset: ReadSubset | None, wanted: set[bytes] | None) -> list[PackTask]:
    """Tasks reading the packs to check: every pack on disk, or only the ``wanted`` blobs; then the subset."""
    picked: dict[bytes, list[tuple]] = {}
    if wanted is None:
        pack_ids: Iterable[bytes] = view.disk_packs
    else:
        for blob_id in wanted:
            loc = view.location(blob_id)
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
            needed = b"".join(BLOB_RECORD.pack(*r) for r in sorted(picked[pack_id], key=lambda r: (r[3], r[6])))
            tasks.extend(PackTask(pack_id, path, records, size, wanted=part) for part in split_records(needed))
        elif records is None or disk_size <= SPLIT_BYTES:
            tasks.append(PackTask(pack_id, path, records, size))
        else:  # records are in payload order (docs/design.md)
            tasks.append(PackTask(pack_id, path, records, size, blobs=False))
            tasks.extend(PackTask(pack_id, path, records, size, wanted=part) for part in split_records(records))
    return tasks


def task_bytes(task: PackTask, sizes: dict[bytes, int]) -> int:
    """About how many bytes a task reads (for the progress meter and the inline threshold)."""
    if task.wanted is not None:
        last = len(task.wanted) // BLOB_RECORD.size - 1
        rec = BLOB_RECORD.unpack_from(task.wanted, last * BLOB_RECORD.size)
        return max(0, rec[3] + rec[4] - _offset(task.wanted, 0))
    return sizes.get(task.pack_id, 0) if task.blobs else 0


class PackPass:
    """Runs the tasks, in forked workers started right away (or inline when the work is small)."""

    def __init__(self, storage: Storage, tasks: list[PackTask], *, sizes: dict[bytes, int],
                 workers: int | None = None, progress: Callable[[int], None] | None = None,
                 cipher: Cipher = PLAIN):
        use_storage(storage, cipher)  # before the workers fork: they inherit it
        self.tasks, self.sizes, self.progress = tasks, sizes, progress
        self.total = sum(task_bytes(t, sizes) for t in tasks)
        workers = min(workers or os.cpu_count() or 1, len(tasks))
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict = {}
        if workers > 1 and self.total >= INLINE_BYTES:
            with interrupts_deferred() as caught:  # workers are forked as tasks are submitted
                self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                                 initializer=ignore_interrupts)
                # in pack order: a pack's pack-level task and its blob ranges run side by side, so
                # whichever reads a region second finds it in the page cache
                self._futures = {self._pool.submit(check_pack, task): task for task in tasks}
            if caught:
                self.close()
                raise KeyboardInterrupt

    def results(self) -> Iterator[tuple[PackTask, PackOutcome]]:
        if self._pool is None:
            for task in self.tasks:
                yield task, self._done(task, check_pack(task))
            return
        for future in as_completed(self._futures):
            task = self._futures[future]
            try:
                out = future.result()
            except BrokenProcessPool:
                out = PackOutcome(task.pack_id, error="the checking process died")
            yield task, self._done(task, out)

    def _done(self, task: PackTask, out: PackOutcome) -> PackOutcome:
        if self.progress:
            self.progress(task_bytes(task, self.sizes))
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "PackPass":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def apply_outcome(view: RepoView, log: DamageLog, report: VerifyReport, task: PackTask, out: PackOutcome) -> int:
    """Record one task's findings; returns how many verdicts it changed (blobs found bad or cleared)."""
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
    changed = 0
    if pid in view.resized:  # the read says exactly which of its blobs are bad
        for rec in BLOB_RECORD.iter_unpack(task.wanted if task.wanted is not None else task.records or b""):
            cause = view.bad.get(rec[0])
            if cause is not None and cause.kind == "pack-size" and cause.pack == pid.hex():
                del view.bad[rec[0]]
                changed += 1
    for kind, detail in out.problems:
        log.cause(kind, pack=pid, detail=detail)
    for blob_id, btype, kind in out.bad:
        cause = log.cause(kind, pack=pid, blob_type=blob_type_name(btype))
        cause.blobs.add(blob_id.hex())
        if view.pack_of(blob_id) == pid:
            view.bad[blob_id] = cause
            changed += 1
    return changed
