"""Damage heals: flip a byte / truncate / delete a pack -> verify names it -> repair packs ->
backup of the same data -> verify clean and every snapshot restores byte for byte.

Everything through the CLI as a user would, on the real sample agent; the only library call
makes the repository's packs tiny so that damage hits one pack of many.  Every test runs on a
local and an S3 repository (``repo_url``); damage goes through the storage interface.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from backends import RepoObjects
from helpers import DB_PATH, init_small_pack_repo, ok, run_cli
from snapstore.repository.pack import BLOB_DATA, read_trailer

PACK_SIZE = 64 * 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshots(repo: str) -> list[str]:
    return [s["id"] for s in json.loads(ok(run_cli("snapshots", "--json", repo=repo)).stdout)]


def dump_digest(repo: str, snapshot: str, out: Path) -> str:
    ok(run_cli("dump", snapshot, DB_PATH, "--out", out, repo=repo))
    digest = sha256(out)
    out.unlink()
    return digest


def pack_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def pack_trailer(repo: str, pack: str):
    """The blob table of the pack object ``pack`` (data/xx/id), read as the repository does."""
    return read_trailer(RepoObjects(repo).storage, pack)


def data_packs(repo: str) -> list[str]:
    """Names of the packs holding database chunks, largest first."""
    objects = RepoObjects(repo)
    sizes = {name: objects.size(name) for name in objects.packs()}
    packs = [name for name, size in sizes.items() if read_trailer(objects.storage, name, size)[0].blob_type == BLOB_DATA]
    return sorted(packs, key=lambda name: (-sizes[name], name))


def damage(repo: str, pack: str, how: str) -> None:
    objects = RepoObjects(repo)
    if how == "flip":
        entry = pack_trailer(repo, pack)[0]
        objects.flip(pack, entry.offset + entry.stored_length // 2)
    elif how == "truncate":
        objects.truncate(pack, objects.size(pack) // 2)
    else:
        objects.delete(pack)


@pytest.fixture
def two_states(tmp_path, repo_url):
    """A repository with two snapshots of the sample agent (a day of use between) and a copy of
    the agent's files as each snapshot saw them."""
    agent, repo = tmp_path / "agent", repo_url
    ok(run_cli("sample-agent", agent, "--scale", "1"))
    init_small_pack_repo(repo, PACK_SIZE)
    states = []
    for i in range(2):
        if i:
            ok(run_cli("sample-agent", agent, "--mutate", "0.02"))
        ok(run_cli("backup", "--config", agent / "mirix.yaml", repo=repo))
        state = tmp_path / f"state{i}"
        shutil.copytree(agent, state)
        states.append(state)
    ids = snapshots(repo)
    digests = {sid: dump_digest(repo, sid, tmp_path / "out.db") for sid in ids}
    assert digests[ids[0]] == sha256(states[0] / "sqlite.db")  # the agent is idle: the file is the snapshot
    return agent, repo, states, digests


def back_up_state(agent: Path, state: Path, repo: str) -> dict:
    shutil.copy2(state / "sqlite.db", agent / "sqlite.db")
    return json.loads(ok(run_cli("backup", "--config", agent / "mirix.yaml", "--json", repo=repo)).stdout)


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
def test_damage_is_found_repaired_and_healed_by_the_next_backup(two_states, tmp_path, how):
    agent, repo, states, digests = two_states
    pack = data_packs(repo)[0]
    damage(repo, pack, how)

    found = run_cli("verify", "--full", repo=repo)
    assert found.returncode == 4, found.stderr
    assert pack_id(pack)[:16] in found.stdout
    assert found.stdout.rstrip().splitlines()[-1].startswith("to repair: snapstore repair packs")

    repaired = json.loads(ok(run_cli("repair", "packs", "--json", repo=repo)).stdout)
    assert [d["pack"] for d in repaired["damaged_packs"]] == [pack_id(pack)]
    assert repaired["lost_blobs"], "the damaged pack's chunks are no longer indexed"
    assert not RepoObjects(repo).storage.exists(pack)
    incomplete = {s["id"]: s["files"] for s in repaired["incomplete_snapshots"]}
    assert incomplete and all(files == [DB_PATH] for files in incomplete.values())
    assert set(incomplete) <= set(digests)

    # The repository no longer claims the lost chunks: quick verify names the incomplete snapshots,
    # and a pack-level check finds nothing left to repair.
    assert run_cli("verify", repo=repo).returncode == 4
    again = json.loads(ok(run_cli("repair", "packs", "--json", repo=repo)).stdout)
    assert again["damaged_packs"] == [] and again["salvaged_blobs"] == 0

    # Backups of the same data store exactly what was lost; every snapshot is whole again.
    added = sum(back_up_state(agent, state, repo)["added_chunks"] for state in states)
    assert added >= len(repaired["lost_blobs"]) - 2 * 2  # tree blobs are counted too, and may be re-made
    verified = run_cli("verify", "--full", repo=repo)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for sid, digest in digests.items():
        assert dump_digest(repo, sid, tmp_path / "out.db") == digest, f"snapshot {sid[:8]} restores differently"


def test_flipped_byte_salvages_the_intact_chunks_of_the_pack(two_states, tmp_path):
    _agent, repo, _states, _digests = two_states
    pack = data_packs(repo)[0]
    blobs = len(pack_trailer(repo, pack))
    damage(repo, pack, "flip")
    repaired = json.loads(ok(run_cli("repair", "packs", "--json", repo=repo)).stdout)
    [damaged] = repaired["damaged_packs"]
    assert damaged["bad_blobs"] >= 1
    assert damaged["salvaged"] == blobs - damaged["bad_blobs"] > 0  # one payload (<= 16 pages) lost, not the pack
    assert repaired["new_packs"] >= 1
    assert len(repaired["lost_blobs"]) == damaged["bad_blobs"]


def test_unchanged_database_is_read_again_when_its_chunks_were_lost(tmp_path, repo_url):
    """The unchanged-database shortcut must not keep pointing a new snapshot at lost chunks."""
    agent, repo = tmp_path / "agent", repo_url
    ok(run_cli("sample-agent", agent, "--scale", "1"))
    init_small_pack_repo(repo, PACK_SIZE)
    ok(run_cli("backup", "--config", agent / "mirix.yaml", repo=repo))
    [first] = snapshots(repo)
    digest = dump_digest(repo, first, tmp_path / "out.db")
    damage(repo, data_packs(repo)[0], "delete")
    ok(run_cli("repair", "packs", repo=repo))
    result = json.loads(ok(run_cli("backup", "--config", agent / "mirix.yaml", "--json", repo=repo)).stdout)
    assert result["added_chunks"] > 0
    assert ok(run_cli("verify", "--full", repo=repo)).returncode == 0
    for sid in snapshots(repo):
        assert dump_digest(repo, sid, tmp_path / "out.db") == digest


def test_backup_does_not_deduplicate_against_a_missing_pack(two_states, tmp_path):
    """A pack deleted behind the repository's back: the next backup stores its chunks again (before
    any repair), reads find the new copies, and repair then only has the stale index entry to drop."""
    agent, repo, states, digests = two_states
    pack = data_packs(repo)[0]
    damage(repo, pack, "delete")
    quick = run_cli("verify", repo=repo)
    assert quick.returncode == 4 and pack_id(pack)[:16] in quick.stdout
    added = sum(back_up_state(agent, state, repo)["added_chunks"] for state in states)
    assert added > 0
    for sid, digest in digests.items():
        assert dump_digest(repo, sid, tmp_path / "out.db") == digest
    # The chunks may have been packed exactly as before (same pack id, file back in place); if
    # not, repair drops the stale index entry of the missing pack and loses nothing.
    repaired = json.loads(ok(run_cli("repair", "packs", "--json", repo=repo)).stdout)
    assert [d["pack"] for d in repaired["damaged_packs"]] in ([], [pack_id(pack)])
    assert repaired["lost_blobs"] == [] and repaired["incomplete_snapshots"] == []
    assert ok(run_cli("verify", "--full", repo=repo)).returncode == 0


def test_repair_of_a_clean_repository_changes_nothing(two_states):
    _agent, repo, _states, _digests = two_states
    objects = RepoObjects(repo)
    before = {name: digest for name, digest in objects.state().items() if not name.startswith("locks/")}
    out = ok(run_cli("repair", "packs", repo=repo)).stdout
    assert "no damaged packs found" in out
    assert {name: digest for name, digest in objects.state().items() if not name.startswith("locks/")} == before


def test_named_pack_must_exist(two_states):
    _agent, repo, _states, _digests = two_states
    result = run_cli("repair", "packs", "ffffffff", repo=repo)
    assert result.returncode == 2
    assert result.stderr.startswith("snapstore: no pack") and result.stderr.count("\n") == 1
