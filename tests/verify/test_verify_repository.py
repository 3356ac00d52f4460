"""verify_repository / verify_snapshot on real repositories with real damage (no mocks), on a
local and an S3 repository (the fixtures are parametrized)."""
from __future__ import annotations

import random

import blake3
import msgpack
import pytest

from snapstore.repository import Repository
from snapstore.repository.pack import BLOB_RECORD, pack_id_of, pack_name
from snapstore.verify import parse_read_subset, verify_repository, verify_snapshot

from backends import RepoObjects
from verify_helpers import (DB_PATH, data_packs, file_chunks, file_trees, flip_blob, flip_byte, payload_members,
                      tree_packs, users_of)


def only(report, kind):
    found = [d for d in report.damage if d.kind == kind]
    assert len(found) == 1, f"expected one {kind} in {[d.as_dict() for d in report.damage]}"
    return found[0]


def as_paths(damage) -> dict[str, set[str]]:
    return {sid: set(paths) for sid, paths in damage.snapshots.items()}


def all_packs(location: str) -> set[bytes]:
    return {pack_id_of(name) for name in RepoObjects(location).packs()}


def shared_db_chunk(repo_path, uses) -> bytes:
    """A data chunk every snapshot's database file needs."""
    common = set.intersection(*[ids for (sid, path), ids in uses.items() if path == DB_PATH])
    return sorted(common)[len(common) // 2]


# -- clean -----------------------------------------------------------------------------------

@pytest.mark.parametrize("full", [False, True])
def test_clean_repository_verifies_clean(pristine, full):
    report = verify_repository(Repository.open(pristine.location), full=full)
    assert report.clean and report.status == "clean" and report.exit_code == 0, report.as_dict()
    assert report.snapshots == 3 and report.files >= 3 * 5
    if full:
        assert report.packs_read == len(all_packs(pristine.location))
        assert report.blobs_read == len(Repository.open(pristine.location).index)
    assert report.as_dict()["damage"] == []


def test_unchanged_snapshots_cost_no_extra_chunk_checks(repo_copy):
    """Quick verify's work follows distinct content: a repeated snapshot adds files, not chunk checks."""
    from snapstore.manifest import list_snapshots, save_snapshot
    repo_path = repo_copy
    before = verify_repository(Repository.open(repo_path))
    repo = Repository.open(repo_path)
    latest = list_snapshots(repo)[-1]
    for i in range(20):  # the same content again, as an idle agent's hourly backups would be
        latest.time = latest.time[:-6] + f"{i:06d}"
        latest.tags = [f"copy{i}"]
        save_snapshot(repo, latest)
    after = verify_repository(Repository.open(repo_path))
    assert after.clean and after.snapshots == 23
    assert after.chunks == before.chunks
    assert after.files == before.files * 23 // 3


# -- damage ------------------------------------------------------------------------------------

def test_flipped_byte_in_data_pack(repo_copy):
    uses = file_chunks(repo_copy)
    chunk = shared_db_chunk(repo_copy, uses)
    pack_id = flip_blob(repo_copy, chunk)
    assert verify_repository(Repository.open(repo_copy)).clean  # quick reads no chunk data
    report = verify_repository(Repository.open(repo_copy), full=True)
    assert report.exit_code == 4
    bad = only(report, "chunk-corrupt")
    assert bad.pack == pack_id.hex() and bad.blob_type == "data"
    damaged = {bytes.fromhex(b) for b in bad.blobs}
    assert damaged and damaged <= payload_members(repo_copy, chunk)  # the frame holding the flipped byte
    assert as_paths(bad) == users_of(uses, damaged)
    assert set(as_paths(bad)) == set(s for s, _ in uses)  # all three snapshots
    only(report, "pack-hash")
    assert {d.kind for d in report.damage} == {"chunk-corrupt", "pack-hash"}


def test_truncated_pack(repo_copy):
    uses = file_chunks(repo_copy)
    packs = data_packs(repo_copy)
    pack_id = max(packs, key=lambda p: len(packs[p]))
    objects = RepoObjects(repo_copy)
    size = objects.size(pack_name(pack_id))
    objects.truncate(pack_name(pack_id), size // 2)
    quick = verify_repository(Repository.open(repo_copy))
    damage = only(quick, "pack-size")
    assert damage.pack == pack_id.hex() and str(size) in damage.message
    assert as_paths(damage) == users_of(uses, set(packs[pack_id]))
    full = verify_repository(Repository.open(repo_copy), full=True)
    truncated = only(full, "chunk-truncated")
    assert truncated.pack == pack_id.hex()
    index = Repository.open(repo_copy).index
    cut = {bytes.fromhex(b) for b in truncated.blobs}
    assert cut and all(index.get(b).offset + index.get(b).stored_length > size // 2 for b in cut)
    assert len(cut) < len(packs[pack_id])  # blobs before the cut still check out
    assert as_paths(truncated) == users_of(uses, cut)
    assert only(full, "pack-size").snapshots == {}


def test_deleted_pack(repo_copy):
    uses = file_chunks(repo_copy)
    packs = data_packs(repo_copy)
    pack_id = sorted(packs)[0]
    RepoObjects(repo_copy).delete(pack_name(pack_id))
    for full in (False, True):
        report = verify_repository(Repository.open(repo_copy), full=full)
        damage = only(report, "pack-missing")
        assert damage.pack == pack_id.hex()
        needed = set(packs[pack_id]) & set().union(*uses.values())
        assert damage.blobs == {b.hex() for b in needed}
        assert as_paths(damage) == users_of(uses, set(packs[pack_id]))
        assert report.exit_code == 4


def test_deleted_index_entry(repo_copy):
    uses = file_chunks(repo_copy)
    chunk = shared_db_chunk(repo_copy, uses)
    objects = RepoObjects(repo_copy)
    for name in objects.names("index/"):
        doc = msgpack.unpackb(objects.read(name))
        for pack in doc["packs"]:
            records = [r for r in BLOB_RECORD.iter_unpack(pack["blobs"])]
            kept = [r for r in records if r[0] != chunk]
            if len(kept) != len(records):
                pack["blobs"] = b"".join(BLOB_RECORD.pack(*r) for r in kept)
                data = msgpack.packb(doc)
                objects.write(f"index/{blake3.blake3(data).hexdigest()}", data)
                objects.delete(name)
                break
        else:
            continue
        break
    else:
        pytest.fail("chunk not found in any index file")
    assert chunk not in Repository.open(repo_copy).index
    report = verify_repository(Repository.open(repo_copy))
    damage = only(report, "chunk-missing")
    assert damage.blobs == {chunk.hex()} and damage.pack is None
    assert as_paths(damage) == users_of(uses, {chunk})
    full = verify_repository(Repository.open(repo_copy), full=True)
    assert only(full, "chunk-missing").blobs == {chunk.hex()}
    assert "disagree" in only(full, "pack-trailer").message  # the pack still lists it


def test_corrupt_manifest(repo_copy, pristine):
    sid = pristine.snapshot_ids[1]
    flip_byte(repo_copy, f"snapshots/{sid}", 10)
    report = verify_repository(Repository.open(repo_copy))
    damage = only(report, "manifest-corrupt")
    assert set(damage.snapshots) == {sid} and sid[:8] in damage.message
    assert report.exit_code == 4 and report.snapshots == 3
    assert {d.kind for d in report.damage} == {"manifest-corrupt"}


def test_flipped_byte_in_tree_blob(repo_copy):
    trees = file_trees(repo_copy)
    packs = tree_packs(repo_copy)
    db_trees = set().union(*[ids for (sid, path), ids in trees.items() if path == DB_PATH])
    tree = sorted(db_trees & set().union(*packs.values()))[0]
    pack_id = flip_blob(repo_copy, tree)
    report = verify_repository(Repository.open(repo_copy))  # quick reads the chunk lists
    damage = only(report, "chunk-corrupt")
    assert damage.blob_type == "tree" and damage.pack == pack_id.hex() and damage.blobs == {tree.hex()}
    assert as_paths(damage) == users_of(trees, {tree})
    full = verify_repository(Repository.open(repo_copy), full=True)
    assert as_paths(only(full, "chunk-corrupt")) == users_of(trees, {tree})


def test_digest_mismatch_is_found_by_full(repo_copy, pristine):
    """A manifest whose digest does not match its chunk list (written under its proper hash name)."""
    repo = Repository.open(repo_copy)
    sid = pristine.snapshot_ids[0]
    objects = RepoObjects(repo_copy)
    doc = msgpack.unpackb(objects.read(f"snapshots/{sid}"))
    entry = next(f for f in doc["files"] if f["path"] == DB_PATH)
    entry["digest"] = bytes(32)
    data = msgpack.packb(doc)
    new_id = repo.write_snapshot_file(data)
    objects.delete(f"snapshots/{sid}")
    assert verify_repository(Repository.open(repo_copy)).clean
    report = verify_repository(Repository.open(repo_copy), full=True)
    assert as_paths(only(report, "digest-mismatch")) == {new_id: {DB_PATH}}


# -- scope ---------------------------------------------------------------------------------------

def test_read_subsets_cover_every_pack_once(repo_copy):
    packs = sorted(data_packs(repo_copy))
    chunk_pack = packs[len(packs) // 2]
    chunk = data_packs(repo_copy)[chunk_pack][0]
    flip_blob(repo_copy, chunk)
    packs_now = all_packs(repo_copy)
    slices = [parse_read_subset(f"{k}/3").select(packs_now) for k in (1, 2, 3)]
    assert sorted(p for s in slices for p in s) == sorted(packs_now)
    reports = [verify_repository(Repository.open(repo_copy), read_subset=f"{k}/3") for k in (1, 2, 3)]
    assert sum(r.packs_read for r in reports) == len(packs_now)
    assert all(r.mode == "full" for r in reports)
    found = [r for r in reports if not r.clean]
    assert len(found) == 1 and only(found[0], "chunk-corrupt").pack == chunk_pack.hex()
    share = verify_repository(Repository.open(repo_copy), read_subset="50%")
    assert share.packs_read == -(-len(packs_now) // 2)
    assert parse_read_subset("100%").select(packs_now, random.Random(1)) == sorted(packs_now)


def test_verify_ids_checks_only_those_snapshots(repo_copy, pristine):
    uses = file_chunks(repo_copy)
    first, _, last = pristine.snapshot_ids
    only_last = uses[(last, DB_PATH)] - set().union(*[ids for (sid, _), ids in uses.items() if sid != last])
    chunk = sorted(only_last)[0]
    flip_blob(repo_copy, chunk)
    clean = verify_repository(Repository.open(repo_copy), full=True, snapshot_ids=[first[:8]])
    assert clean.clean and clean.snapshots == 1
    report = verify_repository(Repository.open(repo_copy), full=True, snapshot_ids=["latest"])
    assert report.snapshots == 1
    assert as_paths(only(report, "chunk-corrupt")) == {last: {DB_PATH}}
    snap = verify_snapshot(Repository.open(repo_copy), last)
    damaged = {bytes.fromhex(b) for b in only(snap, "chunk-corrupt").blobs}
    assert snap.exit_code == 4 and damaged and damaged <= payload_members(repo_copy, chunk)
    # verify_snapshot reads only what the snapshot needs
    objects = RepoObjects(repo_copy)
    assert snap.bytes_read < sum(objects.size(name) for name in objects.packs())
    assert verify_snapshot(Repository.open(repo_copy), first).clean


def test_manifest_of_newer_format_makes_the_check_incomplete(repo_copy):
    repo = Repository.open(repo_copy)
    data = msgpack.packb({"v": 99, "files": []})
    repo.write_snapshot_file(data)
    report = verify_repository(Repository.open(repo_copy))
    assert report.status == "incomplete" and report.exit_code == 5 and not report.damage
    assert "newer" in report.unchecked[0]


def test_split_packs_in_worker_processes(repo_copy, monkeypatch):
    """Big packs are checked as a pack-level task plus blob ranges, in forked workers: same findings."""
    from snapstore.verify import packpass
    monkeypatch.setattr(packpass, "SPLIT_BYTES", 32 * 1024)
    monkeypatch.setattr(packpass, "INLINE_BYTES", 0)
    clean = verify_repository(Repository.open(repo_copy), full=True, workers=2)
    assert clean.clean, clean.as_dict()
    assert clean.blobs_read == len(Repository.open(repo_copy).index)
    assert clean.packs_read == len(all_packs(repo_copy))
    uses = file_chunks(repo_copy)
    packs = data_packs(repo_copy)
    pack_id = max(packs, key=lambda p: len(packs[p]))
    index = Repository.open(repo_copy).index
    chunk = min(packs[pack_id], key=lambda b: index.get(b).offset)  # before the cut
    flip_blob(repo_copy, chunk)
    objects = RepoObjects(repo_copy)
    objects.truncate(pack_name(pack_id), objects.size(pack_name(pack_id)) * 3 // 4)
    report = verify_repository(Repository.open(repo_copy), full=True, workers=2)
    corrupt, truncated = only(report, "chunk-corrupt"), only(report, "chunk-truncated")
    assert {bytes.fromhex(b) for b in corrupt.blobs} <= payload_members(repo_copy, chunk)
    assert corrupt.pack == truncated.pack == pack_id.hex()
    assert as_paths(truncated) == users_of(uses, {bytes.fromhex(b) for b in truncated.blobs})
    assert {d.kind for d in report.damage} == {"chunk-corrupt", "chunk-truncated", "pack-hash", "pack-size",
                                               "pack-trailer"}
