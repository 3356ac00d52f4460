"""The repository as verify sees it: index entries, pack files on disk, and a verdict table.

Verify loads the index itself instead of using ``Repository.index`` because a
corrupt index file must become a line in the damage report, not abort the run:
the other files are still loaded and chunks listed only in the bad one show up
as missing.  The pack objects are listed once (with their sizes); from that, blobs that cannot be
read at all (pack missing, pack of the wrong size, entry outside its pack) get a
cause in ``bad`` before any snapshot is looked at, so judging a chunk is an
index lookup (vectorised per id list) and, only if some blobs are bad, a dict lookup.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..crypto.keys import list_keys
from ..errors import IntegrityError
from ..repository import Repository
from ..repository.index import Index, decode_index_file, index_file_ids, prefer_present
from ..repository.pack import BLOB_RECORD, BLOB_TREE, PACK_MAGIC, TAIL, pack_id_of, pack_name
from ..storage import ObjectNotFound, StorageError
from .report import Damage, DamageLog, VerifyReport

BlobLoc = tuple  # (pack id, type, codec, payload offset, stored length, plain length, inner offset)


def blob_type_name(code: int) -> str:
    return "tree" if code == BLOB_TREE else "data"


@dataclass
class RepoView:
    repo: Repository
    index: Index = field(default_factory=Index)  # the repository's index, loaded from the readable files
    pack_records: dict[bytes, bytes] = field(default_factory=dict)  # first listing of each pack
    pack_sizes: dict[bytes, int] = field(default_factory=dict)  # size the index records
    disk_packs: dict[bytes, tuple[str, int]] = field(default_factory=dict)  # pack objects found: name, size
    resized: set[bytes] = field(default_factory=set)  # packs whose size differs from the index's
    bad: dict[bytes, Damage] = field(default_factory=dict)  # blob id -> why it cannot be read

    def location(self, blob_id: bytes) -> BlobLoc | None:
        """Where the index puts a blob (a ``Location``: pack id first)."""
        return self.index.get(blob_id)

    def pack_of(self, blob_id: bytes) -> bytes | None:
        loc = self.index.get(blob_id)
        return None if loc is None else loc.pack_id

    def pack_name(self, pack_id: bytes) -> str:
        found = self.disk_packs.get(pack_id)
        return found[0] if found is not None else pack_name(pack_id)


def _load_index_files(view: RepoView, log: DamageLog, report: VerifyReport) -> None:
    listed: list[tuple[bytes, int, bytes]] = []
    file_ids = index_file_ids(view.repo.storage)
    for file_id in file_ids:
        try:
            data = view.repo.read_index_file(file_id)
        except ObjectNotFound:
            continue  # replaced by a repair while we ran
        except StorageError as exc:
            report.unchecked.append(f"index file {file_id[:16]}: {exc}")
            continue
        try:
            listed.extend(decode_index_file(file_id, data, cipher=view.repo.cipher))
        except IntegrityError as exc:
            detail = ("content does not hash to its name (run 'snapstore repair index')"
                      if "hash mismatch" in str(exc) else f"unreadable ({exc})")
            log.cause("index-corrupt", index_file=file_id, detail=detail)
    # the first listing of a blob wins, as in Index, listings in existing packs first (a blob stored
    # again after its pack was lost is read from the new copy)
    listed = prefer_present(listed, set(view.disk_packs))
    for pack_id, size, records in reversed(listed):  # each pack's first listing overrides the later ones
        view.pack_records[pack_id] = records
        view.pack_sizes[pack_id] = size
    view.index.add_packs(listed)
    view.repo.cache_tree_packs([pid for pid, recs in view.pack_records.items() if recs and recs[32] == BLOB_TREE],
                               file_ids)


def _list_packs(view: RepoView, report: VerifyReport) -> None:
    """Every pack object with its size, from one listing of ``data/``."""
    for obj in view.repo.storage.list("data/"):
        pack_id = pack_id_of(obj.name)
        if pack_id is None:
            report.notes.append(f"stray file in data/: {obj.name}")
            continue
        view.disk_packs[pack_id] = (obj.name, obj.size)


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
            if view.pack_of(blob_id) != pack_id:
                continue  # listed again elsewhere; the first listing is the one read
            if pack_cause is not None:
                cause = pack_cause
            elif offset < len(PACK_MAGIC) or offset + slen > recorded - TAIL.size:
                cause = log.cause("chunk-outside", pack=pack_id, blob_type=blob_type_name(btype))
                cause.blobs.add(blob_id.hex())
            else:
                continue
            view.bad[blob_id] = cause


def _check_key_files(repo: Repository, log: DamageLog, report: VerifyReport) -> None:
    """Every key file of an encrypted repository decodes and matches its name (each one's
    wrapping can only be checked with its own passphrase: the one in use opened already)."""
    try:
        infos = list_keys(repo.storage, strict=False)
    except StorageError as exc:
        report.unchecked.append(f"key files: {exc}")
        return
    for info in infos:
        if info.damage:
            log.cause("key-corrupt", detail=info.damage, key=(info.key_id,))


def load_view(repo: Repository, log: DamageLog, report: VerifyReport) -> RepoView:
    view = RepoView(repo)
    if repo.config.encrypted:
        _check_key_files(repo, log, report)
    _list_packs(view, report)  # first: listings in existing packs win (prefer_present)
    _load_index_files(view, log, report)
    _judge_packs(view, log)
    unindexed = [pid for pid in view.disk_packs if pid not in view.pack_sizes]
    if unindexed:
        report.notes.append(f"{len(unindexed)} pack(s) are in no index file (left by an interrupted backup: "
                            "'snapstore repair index' indexes them)")
    report.packs = len(view.pack_sizes)
    return view
