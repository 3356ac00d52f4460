"""Damage heals: flip a byte / truncate / delete a pack -> verify names it -> repair packs ->
backup of the same data -> verify clean and every snapshot restores byte for byte.

Everything through the CLI as a user would, on the real sample agent; the only library call
makes the repository's packs tiny so that damage hits one pack of many.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from helpers import DB_PATH, init_small_pack_repo, ok, run_cli
from snapstore.repository import Repository
from snapstore.repository.pack import BLOB_DATA, read_trailer

PACK_SIZE = 64 * 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshots(repo: Path) -> list[str]:
    return [s["id"] for s in json.loads(ok(run_cli("snapshots", "--json", repo=repo)).stdout)]


def dump_digest(repo: Path, snapshot: str, out: Path) -> str:
    ok(run_cli("dump", snapshot, DB_PATH, "--out", out, repo=repo))
    digest = sha256(out)
    out.unlink()
    return digest


def pack_trailer(pack: Path):
    """The blob table of the pack file ``pack`` (REPO/data/xx/id), read as the repository does."""
    repo = pack.parents[2]
    return read_trailer(Repository.open(repo).storage, pack.relative_to(repo).as_posix())


def data_packs(repo: Path) -> list[Path]:
    """Pack files holding database chunks, largest first."""
    opened = Repository.open(repo)
    packs = [repo / name for name in opened.pack_names()
             if read_trailer(opened.storage, name, (repo / name).stat().st_size)[0].blob_type == BLOB_DATA]
    return sorted(packs, key=lambda p: (-p.stat().st_size, p.name))


def damage(pack: Path, how: str) -> None:
    if how == "flip":
        entry = pack_trailer(pack)[0]
        with open(pack, "r+b") as f:
            f.seek(entry.offset + entry.stored_length // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xFF]))
    elif how == "truncate":
        with open(pack, "r+b") as f:
            f.truncate(pack.stat().st_size // 2)
    else:
        pack.unlink()


@pytest.fixture
def two_states(tmp_path):
    """A repository with two snapshots of the sample agent (a day of use between) and a copy of
    the agent's files as each snapshot saw them."""
    agent, repo = tmp_path / "agent", tmp_path / "repo"
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


def back_up_state(agent: Path, state: Path, repo: Path) -> dict:
    shutil.copy2(state / "sqlite.db", agent / "sqlite.db")
    return json.loads(ok(run_cli("backup", "--config", agent / "mirix.yaml", "--json", repo=repo)).stdout)


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
def test_damage_is_found_repaired_and_healed_by_the_next_backup(two_states, tmp_path, how):
    agent, repo, states, digests = two_states
    pack = data_packs(repo)[0]
    damage(pack, how)

    found = run_cli("verify", "--full", repo=repo)
    assert found.returncode == 4, found.stderr
    assert pack.name[:16] in found.stdout
    assert found.stdout.rstrip().splitlines()[-1].startswith("to repair: snapstore repair packs")

    repaired = json.loads(ok(run_cli("repair", "packs", "--json", repo=repo)).stdout)
    assert [d["pack"] for d in repaired["damaged_packs"]] == [pack.name]
    assert repaired["lost_blobs"], "the damaged pack's chunks are no longer indexed"
    assert not pack.exists()
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
    blobs = len(pack_trailer(pack))
    damage(pack, "flip")
    repaired = json.loads(ok(run_cli("repair", "packs", "--json", repo=repo)).stdout)
    [damaged] = repaired["damaged_packs"]
    assert damaged["bad_blobs"] >= 1
    assert damaged["salvaged"] == blobs - damaged["bad_blobs"] > 0  # one payload (<= 16 pages) lost, not the pack
    assert repaired["new_packs"] >= 1
    assert len(repaired["lost_blobs"]) == damaged["bad_blobs"]


def test_unchanged_database_is_read_again_when_its_chunks_were_lost(tmp_path):
    """The unchanged-database shortcut must not keep pointing a new snapshot at lost chunks."""
    agent, repo = tmp_path / "agent", tmp_path / "repo"
    ok(run_cli("sample-agent", agent, "--scale", "1"))
    init_small_pack_repo(repo, PACK_SIZE)
    ok(run_cli("backup", "--config", agent / "mirix.yaml", repo=repo))
    [first] = snapshots(repo)
    digest = dump_digest(repo, first, tmp_path / "out.db")
    damage(data_packs(repo)[0], "delete")
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
    damage(pack, "delete")
    quick = run_cli("verify", repo=repo)
    assert quick.returncode == 4 and pack.name[:16] in quick.stdout
    added = sum(back_up_state(agent, state, repo)["added_chunks"] for state in states)
    assert added > 0
    for sid, digest in digests.items():
        assert dump_digest(repo, sid, tmp_path / "out.db") == digest
    # The chunks may have been packed exactly as before (same pack id, file back in place); if
    # not, repair drops the stale index entry of the missing pack and loses nothing.
    repaired = json.loads(ok(run_cli("repair", "packs", "--json", repo=repo)).stdout)
    assert [d["pack"] for d in repaired["damaged_packs"]] in ([], [pack.name])
    assert repaired["lost_blobs"] == [] and repaired["incomplete_snapshots"] == []
    assert ok(run_cli("verify", "--full", repo=repo)).returncode == 0


def test_repair_of_a_clean_repository_changes_nothing(two_states):
    _agent, repo, _states, _digests = two_states
    before = sorted(p.relative_to(repo) for p in repo.rglob("*") if p.is_file() and "locks" not in p.parts)
    out = ok(run_cli("repair", "packs", repo=repo)).stdout
    assert "no damaged packs found" in out
    after = sorted(p.relative_to(repo) for p in repo.rglob("*") if p.is_file() and "locks" not in p.parts)
    assert before == after


def test_named_pack_must_exist(two_states):
    _agent, repo, _states, _digests = two_states
    result = run_cli("repair", "packs", "ffffffff", repo=repo)
    assert result.returncode == 2
    assert result.stderr.startswith("snapstore: no pack") and result.stderr.count("\n") == 1
