"""Prune: free what no remaining snapshot references (docs/design.md, "Prune").

Under the **exclusive** repository lock (backups, imports, exports, restores,
dumps and verifies hold it shared, so none runs meanwhile), in this order, each
step durable before the next:

1. remove the temp files killed writers left; load every snapshot (a manifest
   that cannot be read stops the prune before anything is deleted) and walk its
   chunk lists, trees included, to the set of blobs still needed;
2. classify every pack by its payloads: wholly unused -> delete; unused share
   above ``max_unused`` -> repack (most wasteful first, up to ``max_repack_size``
   bytes of packs); else keep.  Packs in no index file (a killed backup's or
   prune's) are read from their trailers and judged the same way;
3. repack: copy the still-needed payloads, checked but not recompressed, into
   new packs through the ordinary ``BlobWriter`` (packs stored, then an index file);
4. write ONE index file naming every kept and new pack, then remove all older
   index files (``Repository.replace_index``);
5. delete the unused and repacked packs, which no index file names any more.

A kill anywhere leaves at worst unreferenced packs (steps 3 and 5) or the new
index beside some old ones (step 4: the union names only packs that exist), and
the next prune finishes the job.
"""
from __future__ import annotations

import operator
import os
import signal
import struct
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterable

import msgpack
import zstandard

from ..chunklist import ID_SIZE, LEAF_IDS
from ..errors import IntegrityError, UnsupportedFormat, UsageError
from ..manifest import Snapshot, list_snapshots
from ..repository import Repository
from ..repository.blob import check_blob, open_payload
from ..repository.index import Index, PackInfo
from ..repository.pack import BLOB_RECORD, BLOB_TREE, pack_id_of, pack_name, trailer_records
from ..storage import ObjectNotFound

DEFAULT_MAX_UNUSED = 0.05
Say = Callable[[str], None]
Progress = Callable[[int], None]


class PruneRefused(IntegrityError):
    """The repository cannot be pruned safely as it is; nothing was deleted."""


# -- what the snapshots need -------------------------------------------------------------

_ID = struct.Struct(f"{ID_SIZE}s")
_first = operator.itemgetter(0)


def _ids(data: bytes) -> Iterable[bytes]:
    """The ids of a list, split in C (a 1 GB database's list holds ~250k)."""
    return map(_first, _ID.iter_unpack(data[:len(data) - len(data) % ID_SIZE]))


class _Needed:
    """The blobs some snapshot needs: exactly what ``load_list`` and ``tree_ids`` give for each
    file.  Lists are gathered per base first, so each leaf of a base is read once whatever the
    number of lists (patches) on it, and a leaf every list needs whole is added once by id."""

    def __init__(self, reader):
        self.reader = reader
        self.blobs: set[bytes] = set()
        self._whole_leaves: set[bytes] = set()
        self._lists: set[tuple] = set()
        self._bases: dict[bytes, list[tuple[int, dict[int, set[int]]]]] = {}  # base -> (count, patched positions by leaf)

    def add_list(self, ref) -> None:
        key = (ref.count, ref.inline, ref.base, ref.patch)
        if key in self._lists:
            return
        self._lists.add(key)
        if ref.inline is not None:
            self.blobs.update(_ids(ref.inline))
            return
        by_leaf: dict[int, set[int]] = {}
        if ref.patch is not None:
            patch = msgpack.unpackb(self.reader.read(ref.patch))
            self.blobs.add(ref.patch)
            positions = struct.unpack(f"<{len(patch['pos']) // 4}I", patch["pos"])
            new_ids = patch["ids"]
            for k, pos in enumerate(positions):
                if pos < ref.count:
                    self.blobs.add(new_ids[k * ID_SIZE:(k + 1) * ID_SIZE])
                by_leaf.setdefault(pos // LEAF_IDS, set()).add(pos)
        self._bases.setdefault(ref.base, []).append((ref.count, by_leaf))

    def finish(self) -> set[bytes]:
        """Add what the bases give: per leaf, every position some list on the base needs."""
        for base, lists in self._bases.items():
            leaves = list(msgpack.unpackb(self.reader.read(base))["leaves"])
            self.blobs.add(base)
            self.blobs.update(leaves)
            for k, leaf in enumerate(leaves):
                if leaf in self._whole_leaves:  # what any list needs of it is already in
                    continue
                start, end = k * LEAF_IDS, (k + 1) * LEAF_IDS
                unneeded: set[int] | None = None  # positions of this leaf no list needs
                for count, by_leaf in lists:
                    if count <= start:
                        mine = set(range(start, end))
                    else:
                        mine = set(by_leaf.get(k, ()))
                        if count < end:
                            mine.update(range(count, end))
                    unneeded = mine if unneeded is None else unneeded & mine
                    if not unneeded:
                        break
                if unneeded and len(unneeded) == LEAF_IDS:
                    continue
                data = self.reader.read(leaf)
                if not unneeded:
                    self.blobs.update(_ids(data))
                    self._whole_leaves.add(leaf)
                    continue
                for pos in range(start, start + len(data) // ID_SIZE):
                    if pos not in unneeded:
                        off = (pos - start) * ID_SIZE
                        self.blobs.add(data[off:off + ID_SIZE])
        return self.blobs


def needed_blobs(snapshots: Iterable[Snapshot], reader) -> set[bytes]:
    """Every blob (chunks and chunk-list trees) the snapshots need; PruneRefused if a list cannot be read."""
    needed = _Needed(reader)
    what = ""
    try:
        for snap in snapshots:
            for entry in snap.files:
                what = f"snapshot {snap.short_id} ({entry.path})"
                needed.add_list(entry.chunks)
        what = "a chunk list base"
        return needed.finish()
    except IntegrityError as exc:
        raise PruneRefused(f"cannot tell what {what} needs: {exc}; nothing was deleted "
                           "(run 'snapstore verify')") from None
    except (ValueError, KeyError, TypeError, struct.error, msgpack.UnpackException) as exc:
        raise PruneRefused(f"a chunk list of {what} is malformed ({exc}); nothing was deleted "
                           "(run 'snapstore verify')") from None


# -- the plan ------------------------------------------------------------------------------

@dataclass
class PackUse:
    """One pack judged by its payloads: a payload is used when it holds a needed blob whose
    copy the index resolves to this pack (other copies of a blob are duplicates)."""

    pack_id: bytes
    size: int
    records: bytes
    indexed: bool
    used_bytes: int = 0
    unused_bytes: int = 0
    live: list[tuple] = field(default_factory=list)  # records of needed blobs resolved here

    @property
    def blob_type(self) -> int:
        return self.records[32] if self.records else 0

    @property
    def unused_fraction(self) -> float:
        total = self.used_bytes + self.unused_bytes
        return self.unused_bytes / total if total else 1.0


@dataclass
class PrunePlan:
    snapshots: int = 0
    needed: int = 0
    keep: list[PackUse] = field(default_factory=list)
    delete: list[PackUse] = field(default_factory=list)
    repack: list[PackUse] = field(default_factory=list)
    stale_entries: list[bytes] = field(default_factory=list)  # indexed packs whose file is gone
    unreadable: list[str] = field(default_factory=list)  # unindexed packs whose trailer is bad: left alone
    index_files: list[str] = field(default_factory=list)
    index_bytes: int = 0

    @property
    def nothing_to_do(self) -> bool:
        adopted = any(not p.indexed for p in self.keep)
        return not (self.delete or self.repack or self.stale_entries or adopted or len(self.index_files) > 1
                    or (self.index_files and not self.keep))


def _full_index(repo: Repository, plan: PrunePlan) -> tuple[dict[bytes, PackUse], Index]:
    """Every pack that exists, with its records (the index's, or its trailer's if in no index
    file), and an index over them that resolves a blob as reads do."""
    index = repo.index
    plan.index_files = list(index.files)
    on_disk = {info.name: info.size for info in repo.storage.list("data/")}
    packs: dict[bytes, PackUse] = {}
    for info in index.pack_infos():
        if pack_name(info.pack_id) in on_disk:
            packs[info.pack_id] = PackUse(info.pack_id, info.size, info.records, indexed=True)
        else:
            plan.stale_entries.append(info.pack_id)
    for name, size in sorted(on_disk.items()):
        pack_id = pack_id_of(name)
        if pack_id is None or pack_id in packs:
            continue
        try:
            records = trailer_records(repo.storage, name, size, repo.cipher)
        except (IntegrityError, ObjectNotFound) as exc:
            plan.unreadable.append(f"{pack_id.hex()[:16]}: {exc}")
            continue
        packs[pack_id] = PackUse(pack_id, size, records, indexed=False)
    if all(p.indexed for p in packs.values()):
        return packs, index  # blobs of packs that are gone resolve there only if no pack holds them
    full = Index()
    full.add_packs([(p.pack_id, p.size, p.records) for p in packs.values()])  # indexed ones first: they win
    return packs, full


def plan_prune(repo: Repository, *, max_unused: float = DEFAULT_MAX_UNUSED, max_repack_size: int | None = None,
               say: Say | None = None) -> tuple[PrunePlan, Index]:
    """Decide what goes; reads only (the caller holds the lock)."""
    say = say or (lambda _line: None)
    if not 0 <= max_unused <= 1:
        raise UsageError(f"--max-unused must be between 0% and 100%, not {max_unused:.0%}")
    plan = PrunePlan()
    try:
        snaps = list_snapshots(repo)
    except (IntegrityError, UnsupportedFormat) as exc:
        raise PruneRefused(f"prune deletes nothing while a snapshot manifest cannot be read: {exc} "
                           "(forget that snapshot by its id, or restore the manifest, then prune)") from None
    plan.snapshots = len(snaps)
    say("loading the index and listing packs")
    packs, full = _full_index(repo, plan)
    sizes = {info.name: info.size for info in repo.storage.list("index/")}
    plan.index_bytes = sum(sizes.get(f"index/{fid}", 0) for fid in plan.index_files)
    say(f"finding the chunks {len(snaps)} snapshot{'s' * (len(snaps) != 1)} need")
    with repo.reader(full) as reader:
        needed = needed_blobs(snaps, reader)
    plan.needed = len(needed)
    live_by_pack, missing = full.resolve(needed)
    del needed
    missing += sum(len(found) for pack_id, found in live_by_pack.items() if pack_id not in packs)
    if missing:
        raise PruneRefused(f"{missing} chunk{'s' * (missing != 1)} that snapshots need are in no pack; prune "
                           "deletes nothing in a damaged repository (run 'snapstore verify' to see which "
                           "snapshots, then 'snapstore repair index' or a new backup)")
    say(f"judging {len(packs)} pack{'s' * (len(packs) != 1)}")
    candidates = []
    for use in packs.values():
        live = live_by_pack.get(use.pack_id)
        if not live:
            plan.delete.append(use)
            continue
        if len(live) * BLOB_RECORD.size == len(use.records):  # every record live: nothing to judge
            plan.keep.append(use)
            continue
        records = list(BLOB_RECORD.iter_unpack(use.records))
        use.live = [records[i] for i in sorted(set(live))]
        used = {(rec[3], rec[4]) for rec in use.live}
        everything = {(rec[3], rec[4]) for rec in records}
        use.used_bytes = sum(slen for _off, slen in used)
        use.unused_bytes = sum(slen for _off, slen in everything - used)
        if use.unused_bytes and use.unused_fraction > max_unused:
            candidates.append(use)
        else:
            plan.keep.append(use)
    budget = max_repack_size
    for use in sorted(candidates, key=lambda u: (-u.unused_fraction, u.pack_id)):
        if budget is not None and use.size > budget:
            plan.keep.append(use)
            continue
        plan.repack.append(use)
        if budget is not None:
            budget -= use.size
    return plan, full


# -- doing it ------------------------------------------------------------------------------

class _Steps:
    """Numbers every change prune makes to the repository.  ``SNAPSTORE_TEST_PRUNE_STEPS``
    (tests only): ``log`` prints each step on stderr, ``N`` prints step N and SIGKILLs the
    process before it, so a test can kill a prune at every kind of step."""

    def __init__(self):
        raw = os.environ.get("SNAPSTORE_TEST_PRUNE_STEPS", "")
        self.log = raw == "log"
        self.kill_at = int(raw) if raw.isdigit() else None
        self.n = 0

    def __call__(self, phase: str) -> None:
        self.n += 1
        if self.log or self.n == self.kill_at:
            print(f"prune step {self.n}: {phase}", file=sys.stderr, flush=True)
        if self.n == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def _copy_pack(buf: bytes, use: PackUse, writer, dctx: zstandard.ZstdDecompressor) -> None:
    """Copy the payloads of ``use``'s needed blobs into ``writer``'s packs, as stored: each blob is
    checked against its id first, so a damaged blob stops the prune instead of being copied."""
    payloads: dict[tuple[int, int], tuple[int, list]] = {}
    for blob_id, _btype, codec, offset, slen, plain, inner in use.live:
        payloads.setdefault((offset, slen), (codec, []))[1].append((blob_id, plain, inner))
    batch = []
    for (offset, slen), (codec, members) in sorted(payloads.items()):
        data = buf[offset:offset + slen]
        where = f"pack {use.pack_id.hex()[:16]}"
        frame = open_payload(writer.repo.cipher, codec, data, dctx, where) if len(data) == slen else None
        for blob_id, plain, inner in members:
            if frame is None or check_blob(writer.repo.cipher, blob_id, frame, inner, plain) is None:
                raise PruneRefused(f"chunk {blob_id.hex()[:16]} in {where} is damaged; prune stops before "
                                   "deleting anything (run 'snapstore repair packs', then prune)")
        batch.append((codec, data, members))
    writer.copy_payloads(BLOB_TREE if use.blob_type == BLOB_TREE else 0, batch)


@dataclass
class PruneReport:
    dry_run: bool
    plan: PrunePlan
    temps_removed: list[str] = field(default_factory=list)
    new_packs: int = 0
    new_pack_bytes: int = 0  # packs this run added (not those it wrote again, byte for byte)
    deleted_bytes: int = 0
    new_index_bytes: int = 0
    index_files_removed: int = 0
    done: bool = False

    @property
    def freed_estimate(self) -> int:
        p = self.plan
        return sum(u.size for u in p.delete) + sum(u.unused_bytes for u in p.repack)

    @property
    def freed(self) -> int:
        """Bytes the repository shrank by (packs and index files); the estimate on a dry run."""
        if self.dry_run or not self.done:
            return self.freed_estimate
        return self.deleted_bytes - self.new_pack_bytes + self.plan.index_bytes - self.new_index_bytes

    def as_dict(self) -> dict:
        p = self.plan
        return {
            "dry_run": self.dry_run, "nothing_to_do": p.nothing_to_do, "snapshots": p.snapshots,
            "needed_blobs": p.needed,
            "packs": {"kept": len(p.keep), "deleted": len(p.delete), "repacked": len(p.repack),
                      "new": self.new_packs, "stale_index_entries": len(p.stale_entries),
                      "unreadable": p.unreadable},
            "bytes": {"deleted_packs": sum(u.size for u in p.delete), "repacked_packs": sum(u.size for u in p.repack),
                      "repack_unused": sum(u.unused_bytes for u in p.repack),
                      "kept_unused": sum(u.unused_bytes for u in p.keep),
                      "new_packs": self.new_pack_bytes, "index_before": p.index_bytes,
                      "index_after": self.new_index_bytes, "freed": self.freed},
            "index_files": {"before": len(p.index_files), "removed": self.index_files_removed},
            "delete": [{"pack": u.pack_id.hex(), "size": u.size} for u in p.delete],
            "repack": [{"pack": u.pack_id.hex(), "size": u.size, "unused": u.unused_bytes} for u in p.repack],
            "temps_removed": self.temps_removed,
        }


def prune(repo: Repository, *, max_unused: float = DEFAULT_MAX_UNUSED, max_repack_size: int | None = None,
          dry_run: bool = False, say: Say | None = None, progress: Progress | None = None) -> PruneReport:
    """Free what no snapshot needs (module docstring); ``dry_run`` only plans, under a shared lock."""
    say = say or (lambda _line: None)
    with repo.lock(exclusive=not dry_run):
        step = _Steps()
        report = PruneReport(dry_run, PrunePlan())
        if not dry_run:
            step("remove-temps")
            report.temps_removed = repo.remove_stale_temps()
        report.plan, full = plan_prune(repo, max_unused=max_unused, max_repack_size=max_repack_size, say=say)
        plan = report.plan
        if dry_run or plan.nothing_to_do:
            report.done = not dry_run
            return report
        kept = [PackInfo(u.pack_id, u.size, u.records) for u in plan.keep]
        if plan.repack:
            say(f"repacking {len(plan.repack)} pack{'s' * (len(plan.repack) != 1)}")
            keep_index = Index()
            keep_index.add_packs([(k.pack_id, k.size, k.records) for k in kept])
            keep_index.files = list(plan.index_files)  # the writer must not load the old index back
            dctx = zstandard.ZstdDecompressor()
            with repo.writer(keep_index) as writer:
                for use in plan.repack:
                    step("repack")
                    buf = repo.read_pack(use.pack_id)
                    _copy_pack(buf, use, writer, dctx)
                    if progress:
                        progress(len(buf))
            existing = {u.pack_id for u in plan.keep + plan.delete + plan.repack}
            fresh = [info for info in writer.written if info.pack_id not in existing]
            report.new_packs = len(fresh)
            report.new_pack_bytes = sum(info.size for info in fresh)
            kept += writer.written
        say("writing the new index")
        step("write-index")
        new_id, report.index_files_removed = repo.replace_index(kept, before_delete=lambda _n: step("delete-index"))
        report.new_index_bytes = repo.storage.stat(f"index/{new_id}").size if new_id else 0
        # A repack can write a pack byte for byte equal to one an earlier, killed prune wrote
        # (same payloads, same order, so the same name): the new index names it, it stays.
        indexed = {info.pack_id for info in kept}
        doomed = [use for use in plan.delete + plan.repack if use.pack_id not in indexed]
        say(f"deleting {len(doomed)} pack{'s' * (len(doomed) != 1)}")
        for use in doomed:
            step("delete-pack")
            repo.delete_pack(use.pack_id)
            report.deleted_bytes += use.size
        # No reload: the next use of ``repo.index`` loads the new one (replace_index dropped the
        # old), and a cache dropped its copies of what was deleted as it went (CachedStorage.delete).
        report.done = True
        return report
