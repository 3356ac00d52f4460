"""The repository as verify sees it: index entries, pack files on disk, and a verdict table.

Verify loads the index itself instead of using ``Repository.index`` because a
corrupt index file must become a line in the damage report, not abort the run:
the other files are still loaded and chunks listed only in the bad one show up
as missing.  Every pack file is stat'ed once; from that, blobs that cannot be
read at all (pack missing, pack of the wrong size, entry outside its pack) get a
cause in ``bad`` before any snapshot is looked at, so judging a chunk is two
dict lookups.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from pathlib import Path

import blake3
import msgpack

from ..atomic import TMP_MARK
from ..repository import Repository
from ..repository.index import INDEX_VERSION, iter_index_files, prefer_present
from ..repository.pack import BLOB_RECORD, BLOB_TREE, PACK_MAGIC, TAIL
from .report import Damage, DamageLog, VerifyReport

BlobLoc = tuple  # (pack id, type, codec, payload offset, stored length, plain length, inner offset)
_ID_ONLY = struct.Struct(f"32s{BLOB_RECORD.size - 32}x")  # the blob id of a record, skipping the rest


def blob_type_name(code: int) -> str:
    return "tree" if code == BLOB_TREE else "data"


@dataclass
class RepoView:
    repo: Repository
    blobs: dict[bytes, bytes] = field(default_factory=dict)  # blob id -> pack id; first listing wins, as in Index
    pack_records: dict[bytes, bytes] = field(default_factory=dict)  # first listing of each pack
    pack_sizes: dict[bytes, int] = field(default_factory=dict)  # size the index records
    disk_packs: dict[bytes, tuple[Path, int]] = field(default_factory=dict)  # pack files found, with size
    resized: set[bytes] = field(default_factory=set)  # packs whose size differs from the index's
    bad: dict[bytes, Damage] = field(default_factory=dict)  # blob id -> why it cannot be read
    _records_of: dict[bytes, dict[bytes, tuple]] = field(default_factory=dict)

    def location(self, blob_id: bytes) -> BlobLoc | None:
        """Where the index puts a blob; the records of a pack are unpacked the first time one is asked for."""
        pack_id = self.blobs.get(blob_id)
        if pack_id is None:
            return None
        table = self._records_of.get(pack_id)
        if table is None:
            table = self._records_of[pack_id] = {
                rec[0]: rec for rec in BLOB_RECORD.iter_unpack(self.pack_records[pack_id])}
        return (pack_id, *table[blob_id][1:])

    def pack_path(self, pack_id: bytes) -> Path:
        found = self.disk_packs.get(pack_id)
        if found is not None:
            return found[0]
        name = pack_id.hex()
        return self.repo.data_dir / name[:2] / name


def _load_index_files(view: RepoView, log: DamageLog, report: VerifyReport) -> None:
    listed: list[tuple[bytes, int, bytes]] = []
    for path in iter_index_files(view.repo.index_dir):
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.unchecked.append(f"index file {path.name[:16]}: {exc.strerror or exc}")
            continue
        if blake3.blake3(data).hexdigest() != path.name:
            log.cause("index-corrupt", index_file=path.name, detail="content does not hash to its name "
                      "(run 'snapstore repair index')")
            continue
        try:
            doc = msgpack.unpackb(data)
            if doc.get("v") != INDEX_VERSION:
                raise ValueError(f"unknown index version {doc.get('v')!r}")
            packs = [(p["id"], p["size"], p["blobs"]) for p in doc["packs"]]
            for _pid, _size, records in packs:
                if len(records) % BLOB_RECORD.size:
                    raise ValueError("blob records have the wrong length")
        except Exception as exc:  # msgpack raises several types on garbage
            log.cause("index-corrupt", index_file=path.name, detail=f"unreadable ({exc})")
            continue
        listed.extend(packs)
    # the first listing of a blob wins, as in Index, listings in existing packs first (a blob stored
    # again after its pack was lost is read from the new copy): add them last to first, each
    # overriding the later ones
    for pack_id, size, records in reversed(prefer_present(listed, set(view.disk_packs))):
        view.pack_records[pack_id] = records
        view.pack_sizes[pack_id] = size
        view.blobs.update(zip(map(itemgetter(0), _ID_ONLY.iter_unpack(records)), repeat(pack_id)))


def _stat_packs(view: RepoView, report: VerifyReport) -> None:
    """Find and stat every pack file once (os.scandir: a repository may hold thousands)."""
    try:
        subdirs = [e.path for e in os.scandir(view.repo.data_dir) if e.is_dir()]
    except FileNotFoundError:
        return
    for subdir in subdirs:
        for entry in os.scandir(subdir):
            if TMP_MARK in entry.name:
                continue
            try:
                pack_id = bytes.fromhex(entry.name)
                if len(pack_id) != 32:
                    raise ValueError
            except ValueError:
                report.notes.append(f"stray file in data/: {os.path.relpath(entry.path, view.repo.path)}")
                continue
            try:
                view.disk_packs[pack_id] = (Path(entry.path), entry.stat().st_size)
            except FileNotFoundError:
                continue
            except OSError as exc:
                report.unchecked.append(f"pack {entry.name[:16]}: {exc.strerror or exc}")


def _inside(records: bytes, size: int) -> bool:
    """Whether the first and last payloads lie inside a pack of ``size`` (records are in payload order)."""
    if not records:
        return True
    first = BLOB_RECORD.unpack_from(records, 0)
    last = BLOB_RECORD.unpack_from(records, len(records) - BLOB_RECORD.size)
    return first[3] >= len(PACK_MAGIC) and last[3] + last[4] <= size - TAIL.size


def _judge_packs(view: RepoView, log: DamageLog) -> None:
    """Give a cause to every blob whose pack is missing, of the wrong size, or too short for it."""
    for pack_id, recorded in view.pack_sizes.items():
        on_disk = view.disk_packs.get(pack_id)
        pack_cause: Damage | None = None
        if on_disk is None:
            pack_cause = log.cause("pack-missing", pack=pack_id)
        elif on_disk[1] != recorded:
            view.resized.add(pack_id)
            pack_cause = log.cause("pack-size", pack=pack_id,
                                   detail=f"{on_disk[1]} bytes, the index says {recorded}")
        records = view.pack_records[pack_id]
        if pack_cause is None and _inside(records, recorded):
            continue
        for blob_id, btype, _codec, offset, slen, *_rest in BLOB_RECORD.iter_unpack(records):
            if view.blobs[blob_id] != pack_id:
                continue  # listed again elsewhere; the first listing is the one read
            if pack_cause is not None:
                cause = pack_cause
            elif offset < len(PACK_MAGIC) or offset + slen > recorded - TAIL.size:
                cause = log.cause("chunk-outside", pack=pack_id, blob_type=blob_type_name(btype))
                cause.blobs.add(blob_id.hex())
            else:
                continue
            view.bad[blob_id] = cause


def load_view(repo: Repository, log: DamageLog, report: VerifyReport) -> RepoView:
    view = RepoView(repo)
    _stat_packs(view, report)
    _load_index_files(view, log, report)
    _judge_packs(view, log)
    unindexed = [pid for pid in view.disk_packs if pid not in view.pack_sizes]
    if unindexed:
        report.notes.append(f"{len(unindexed)} pack(s) are in no index file (left by an interrupted backup: "
                            "'snapstore repair index' indexes them)")
    report.packs = len(view.pack_sizes)
    return view
