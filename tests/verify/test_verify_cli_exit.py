"""`snapstore verify` as a user runs it: damage named in text and JSON, exit codes 0 / 4 / 5 / 10
(on a local and an S3 repository: the fixtures are parametrized)."""
from __future__ import annotations

import json

import blake3
import msgpack
import pytest

from snapstore.repository import Repository
from snapstore.repository.pack import BLOB_RECORD, pack_name

from verify_helpers import (DB_PATH, data_packs, file_chunks, file_trees, flip_blob, flip_byte, payload_members,
                      tree_packs, users_of)
from backends import RepoObjects
from helpers import run_cli


def shared_db_chunk(uses) -> bytes:
    common = set.intersection(*[ids for (sid, path), ids in uses.items() if path == DB_PATH])
    return sorted(common)[0]


def flip_data_byte(repo):
    uses = file_chunks(repo)
    chunk = shared_db_chunk(uses)
    pack = flip_blob(repo, chunk)
    return "chunk-corrupt", pack, users_of(uses, payload_members(repo, chunk)), True


def truncate_pack(repo):
    uses, packs = file_chunks(repo), data_packs(repo)
    pack = max(packs, key=lambda p: len(packs[p]))
    objects = RepoObjects(repo)
    objects.truncate(pack_name(pack), objects.size(pack_name(pack)) - 100)
    return "pack-size", pack, users_of(uses, set(packs[pack])), False


def delete_pack(repo):
    uses, packs = file_chunks(repo), data_packs(repo)
    pack = sorted(packs)[-1]
    RepoObjects(repo).delete(pack_name(pack))
    return "pack-missing", pack, users_of(uses, set(packs[pack])), False


def delete_index_entry(repo):
    uses = file_chunks(repo)
    chunk = shared_db_chunk(uses)
    objects = RepoObjects(repo)
    for name in objects.names("index/"):
        doc = msgpack.unpackb(objects.read(name))
        for pack in doc["packs"]:
            records = list(BLOB_RECORD.iter_unpack(pack["blobs"]))
            if any(r[0] == chunk for r in records):
                pack["blobs"] = b"".join(BLOB_RECORD.pack(*r) for r in records if r[0] != chunk)
                data = msgpack.packb(doc)
                objects.write(f"index/{blake3.blake3(data).hexdigest()}", data)
                objects.delete(name)
                return "chunk-missing", None, users_of(uses, {chunk}), False
    raise AssertionError("chunk not indexed")


def corrupt_manifest(repo):
    name = RepoObjects(repo).names("snapshots/")[0]
    flip_byte(repo, name, 20)
    sid = name.rsplit("/", 1)[-1]
    return "manifest-corrupt", None, {sid: set()}, False


def flip_tree_byte(repo):
    trees, packs = file_trees(repo), tree_packs(repo)
    db_trees = set().union(*[ids for (sid, path), ids in trees.items() if path == DB_PATH])
    tree = sorted(db_trees & set().union(*packs.values()))[0]
    pack = flip_blob(repo, tree)
    return "chunk-corrupt", pack, users_of(trees, {tree}), False


DAMAGES = [flip_data_byte, truncate_pack, delete_pack, delete_index_entry, corrupt_manifest, flip_tree_byte]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__ for d in DAMAGES])
def test_damage_is_named_and_exits_4(repo_copy, damage):
    kind, pack, users, needs_full = damage(repo_copy)
    args = ["verify", "--full"] if needs_full else ["verify"]
    text = run_cli(*args, repo=repo_copy)
    assert text.returncode == 4, text.stdout + text.stderr
    assert f"[{kind}]" in text.stdout and "repository damaged" in text.stderr
    if pack is not None:
        assert pack.hex()[:16] in text.stdout
    for sid, paths in users.items():
        assert f"snapshot {sid[:8]}" in text.stdout
        for path in paths:
            assert path in text.stdout
    js = run_cli(*args, "--json", repo=repo_copy)
    assert js.returncode == 4
    doc = json.loads(js.stdout)
    assert doc["status"] == "damaged" and doc["clean"] is False
    found = [d for d in doc["damage"] if d["kind"] == kind]
    assert len(found) == 1, doc["damage"]
    entry = found[0]
    assert entry["pack"] == (pack.hex() if pack else None)
    got = {s["id"]: set(s["files"]) for s in entry["snapshots"]}
    if kind == "chunk-corrupt" and entry["blob_type"] == "data":
        assert got and all(sid in users and paths <= users[sid] for sid, paths in got.items())
    else:
        assert got == users
    if needs_full:  # quick verify reads no chunk data: a flipped data byte needs --full
        assert run_cli("verify", repo=repo_copy).returncode == 0


@pytest.mark.parametrize("args", [["verify"], ["verify", "--full"], ["verify", "--read-subset", "2/3"],
                                  ["verify", "latest"]])
def test_clean_repository_exits_0(pristine, args):
    result = run_cli(*args, repo=pristine.location)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no damage found" in result.stdout and result.stderr == ""
    doc = json.loads(run_cli(*args, "--json", repo=pristine.location).stdout)
    assert doc["status"] == "clean" and doc["damage"] == []


def test_verify_id_reports_only_that_snapshot(repo_copy, pristine):
    first, second, last = pristine.snapshot_ids
    flip_byte(repo_copy, f"snapshots/{second}", 20)
    assert run_cli("verify", first[:8], last[:10], repo=repo_copy).returncode == 0
    result = run_cli("verify", second[:8], "--json", repo=repo_copy)
    assert result.returncode == 4
    doc = json.loads(result.stdout)
    assert doc["snapshots"] == 1 and list(doc["damaged_snapshots"]) == [second]


def test_could_not_check_exits_5(repo_copy):
    Repository.open(repo_copy).write_snapshot_file(msgpack.packb({"v": 99}))
    result = run_cli("verify", repo=repo_copy)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "NOT CHECKED" in result.stdout and "could not check" in result.stderr


def test_missing_repository_and_bad_subset(fresh_repo, pristine):
    missing = run_cli("verify", repo=fresh_repo)
    assert missing.returncode == 10 and "no snapstore repository" in missing.stderr
    for bad in ("0/3", "4/3", "x", "0%", "150%"):
        result = run_cli("verify", "--read-subset", bad, repo=pristine.location)
        assert result.returncode == 2 and "--read-subset" in result.stderr and "Traceback" not in result.stderr
    unknown = run_cli("verify", "ffffffff", repo=pristine.location)
    assert unknown.returncode == 2 and "no snapshot" in unknown.stderr
