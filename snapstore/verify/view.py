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

from dataclasses import dataclass, field
from pathlib import Path

import blake3
import msgpack

from ..repository import Repository
from ..repository.index import INDEX_VERSION, iter_index_files
from ..repository.pack import BLOB_RECORD, BLOB_TREE, PACK_MAGIC, TAIL
from .report import Damage, DamageLog, VerifyReport

BlobLoc = tuple  # (pack id, type, codec, payload offset, stored length, plain length, inner offset)


def blob_type_name(code: int) -> str:
    return "tree" if code == BLOB_TREE else "data"


@dataclass
class RepoView:
    repo: Repository
    blobs: dict[bytes, BlobLoc] = field(default_factory=dict)  # first listing wins, as in Index
    pack_records: dict[bytes, bytes] = field(default_factory=dict)  # first listing of each pack
    pack_sizes: dict[bytes, int] = field(default_factory=dict)  # size the index records
    disk_packs: dict[bytes, tuple[Path, int]] = field(default_factory=dict)  # pack files found, with size
    bad: dict[bytes, Damage] = field(default_factory=dict)  # blob id -> why it cannot be read

    def pack_path(self, pack_id: bytes) -> Path:
        found = self.disk_packs.get(pack_id)
        if found is not None:
            return found[0]
        name = pack_id.hex()
        return self.repo.data_dir / name[:2] / name

    def blobs_in(self, pack_id: bytes) -> list[tuple[bytes, int]]:
        """(blob id, type) of the blobs the index resolves to this pack."""
        return [(bid, btype) for bid, btype, *_ in BLOB_RECORD.iter_unpack(self.pack_records.get(pack_id, b""))
                if self.blobs[bid][0] == pack_id]


def _load_index_files(view: RepoView, log: DamageLog, report: VerifyReport) -> None:
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
        for pack_id, size, records in packs:
            view.pack_records.setdefault(pack_id, records)
            view.pack_sizes.setdefault(pack_id, size)
            setdefault = view.blobs.setdefault
            for blob_id, *loc in BLOB_RECORD.iter_unpack(records):
                setdefault(blob_id, (pack_id, *loc))


def _stat_packs(view: RepoView, report: VerifyReport) -> None:
    for path in view.repo.pack_files():
        try:
            pack_id = bytes.fromhex(path.name)
            if len(pack_id) != 32:
                raise ValueError
        except ValueError:
            report.notes.append(f"stray file in data/: {path.relative_to(view.repo.path)}")
            continue
        try:
            view.disk_packs[pack_id] = (path, path.stat().st_size)
        except FileNotFoundError:
            continue
        except OSError as exc:
            report.unchecked.append(f"pack {path.name[:16]}: {exc.strerror or exc}")


def _judge_packs(view: RepoView, log: DamageLog) -> None:
    """Give a cause to every blob whose pack is missing, of the wrong size, or too short for it."""
    for pack_id, recorded in view.pack_sizes.items():
        on_disk = view.disk_packs.get(pack_id)
        pack_cause: Damage | None = None
        if on_disk is None:
            pack_cause = log.cause("pack-missing", pack=pack_id)
        elif on_disk[1] != recorded:
            pack_cause = log.cause("pack-size", pack=pack_id,
                                   detail=f"{on_disk[1]} bytes, the index says {recorded}")
        for blob_id, btype, _codec, offset, slen, *_rest in BLOB_RECORD.iter_unpack(view.pack_records[pack_id]):
            if view.blobs[blob_id][0] != pack_id:
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
    _load_index_files(view, log, report)
    _stat_packs(view, report)
    _judge_packs(view, log)
    unindexed = [pid for pid in view.disk_packs if pid not in view.pack_sizes]
    if unindexed:
        report.notes.append(f"{len(unindexed)} pack(s) are in no index file (left by an interrupted backup: "
                            "'snapstore repair index' indexes them, prune reclaims them)")
    report.packs = len(view.pack_sizes)
    return view
