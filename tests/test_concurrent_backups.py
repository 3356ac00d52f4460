"""Backups running at the same time all land; exclusive work waits for them.

Real ``snapstore`` processes against one repository: two backups started
together (of two agents, and of one agent) both commit a snapshot that dumps
correctly; ``repair index`` (exclusive lock object) waits while a shared lock is held
and proceeds when it is released, or fails with exit code 11 when
``SNAPSTORE_LOCK_WAIT`` runs out; a backup (shared lock) waits for an exclusive
holder the same way.  The lock holder in the waiting tests is this test
process, so the order of events is under the test's control; the tests assert
on that order, never on how long anything took.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from backends import RepoObjects
from helpers import (DB_PATH, cli_env, init_small_pack_repo, integrity_check, ok, popen_cli, run_cli,
                     table_checksums, wait_for)
from snapstore import sample_agent
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.repository.lock import list_locks, repository_lock


PACK_SIZE = 64 * 1024  # many packs and index files per backup: more interleaving of the two writers


@pytest.fixture
def repo_path(repo_url) -> str:
    """A repository of tiny packs, in a local directory and on S3."""
    init_small_pack_repo(repo_url, PACK_SIZE)
    return repo_url


@pytest.fixture
def objects(repo_path):
    objects = RepoObjects(repo_path)
    yield objects
    objects.close()


def held_lock(objects: RepoObjects, *, exclusive: bool):
    """This test process holding the repository lock (a lock object in locks/)."""
    return repository_lock(objects.storage, exclusive=exclusive, wait=5)


def tried_lock(pid: int, objects: RepoObjects) -> bool:
    """Whether process ``pid`` has a lock object in the repository (it has reached the lock).

    A waiting process stores its lock object, sees the conflict and removes it again, over
    and over: the caller polls quickly to see one of those moments."""
    return any(info.pid == pid for info in list_locks(objects.storage))


def run_together(*commands: tuple) -> list[tuple[int, str, str]]:
    procs = [popen_cli(*args, repo=repo) for repo, args in commands]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((proc.returncode, out, err))
    return results


def check_dump(repo_path: str, snapshot_id: str, out: Path, expected: dict) -> None:
    ok(run_cli("dump", snapshot_id, DB_PATH, "--out", out, repo=repo_path))
    assert integrity_check(out) == "ok"
    assert table_checksums(out) == expected


def all_snapshots_read_back(repo_path: str) -> None:
    from snapstore.extract import iter_file_chunks

    repo = Repository.open(repo_path)
    for snap in list_snapshots(repo):
        for entry in snap.files:
            assert sum(len(b) for b in iter_file_chunks(repo, entry)) == entry.size


def test_two_agents_backed_up_at_the_same_time_both_land(tmp_path, repo_path):
    agents = [sample_agent.create_sample_agent(tmp_path / f"agent{i}", scale=1, seed=100 + i) for i in range(2)]
    states = [table_checksums(Path(a.db_path)) for a in agents]
    assert states[0] != states[1]

    results = run_together(*[(repo_path, ("backup", "--config", a.config_path, "--json")) for a in agents])
    for rc, out, err in results:
        assert rc == 0, err
    ids = [json.loads(out)["snapshot_id"] for _, out, _ in results]
    assert len(set(ids)) == 2

    listing = json.loads(ok(run_cli("snapshots", "--json", repo=repo_path)).stdout)
    assert sorted(r["id"] for r in listing) == sorted(ids)
    for i, sid in enumerate(ids):
        check_dump(repo_path, sid, tmp_path / f"dump{i}.db", states[i])
        show = json.loads(ok(run_cli("show", sid, "--json", repo=repo_path)).stdout)
        assert show["source"]["database"].endswith(f"agent{i}/sqlite.db")
    all_snapshots_read_back(repo_path)

    # Each agent's next backup finds its own parent, and still lands.
    for i, a in enumerate(agents):
        sample_agent.mutate_agent(a.directory, fraction=0.02, seed=7 + i)
    states = [table_checksums(Path(a.db_path)) for a in agents]
    results = run_together(*[(repo_path, ("backup", "--config", a.config_path, "--json")) for a in agents])
    for i, (rc, out, err) in enumerate(results):
        assert rc == 0, err
        doc = json.loads(out)
        assert doc["parent"] == ids[i]
        check_dump(repo_path, doc["snapshot_id"], tmp_path / f"next{i}.db", states[i])
    all_snapshots_read_back(repo_path)


def test_two_backups_of_the_same_agent_at_the_same_time_both_land(tmp_path, repo_path):
    agent = sample_agent.create_sample_agent(tmp_path / "agent", scale=1, seed=5)
    ok(run_cli("backup", "--config", agent.config_path, repo=repo_path))
    sample_agent.mutate_agent(agent.directory, fraction=0.1, seed=6)
    state = table_checksums(Path(agent.db_path))

    # Both find the same parent and both store the same new chunks: both must land.
    results = run_together(*[(repo_path, ("backup", "--config", agent.config_path, "--json"))] * 2)
    for rc, out, err in results:
        assert rc == 0, err
    ids = [json.loads(out)["snapshot_id"] for _, out, _ in results]
    assert len(set(ids)) == 2
    listing = json.loads(ok(run_cli("snapshots", "--json", repo=repo_path)).stdout)
    assert {r["id"] for r in listing} >= set(ids) and len(listing) == 3
    for i, sid in enumerate(ids):
        check_dump(repo_path, sid, tmp_path / f"dump{i}.db", state)

    # The repository stays usable: the index rebuilds and a later backup works.
    ok(run_cli("repair", "index", repo=repo_path))
    all_snapshots_read_back(repo_path)
    ok(run_cli("backup", "--config", agent.config_path, repo=repo_path))
    check_dump(repo_path, "latest", tmp_path / "latest.db", state)


def test_repair_waits_for_a_shared_lock_holder_then_succeeds(tmp_path, repo_path, objects):
    agent = sample_agent.create_sample_agent(tmp_path / "agent", scale=1, seed=9)
    ok(run_cli("backup", "--config", agent.config_path, repo=repo_path))
    index_files_before = objects.names("index/")
    assert len(index_files_before) >= 2  # tiny packs: several index files, which repair merges into one

    events = []
    with held_lock(objects, exclusive=False):
        events.append("shared lock taken")
        proc = popen_cli("repair", "index", "--json", repo=repo_path)
        wait_for(lambda: tried_lock(proc.pid, objects) or proc.poll() is not None,
                 what="repair to reach the repository lock", interval=0.001)
        assert proc.poll() is None, f"repair finished while a shared lock was held: {proc.communicate()}"
        events.append("repair waiting")
        # However long we keep holding it, repair must not get past the lock.
        for _ in range(20):
            assert proc.poll() is None
            assert objects.names("index/") == index_files_before
            time.sleep(0.02)
        events.append("shared lock released")
    out, err = proc.communicate(timeout=120)
    events.append("repair finished")
    assert proc.returncode == 0, err
    assert events == ["shared lock taken", "repair waiting", "shared lock released", "repair finished"]
    report = json.loads(out)
    assert report["replaced_index_files"] == len(index_files_before)
    assert len(objects.names("index/")) == 1
    all_snapshots_read_back(repo_path)


def test_repair_gives_up_after_snapstore_lock_wait(tmp_path, repo_path, objects):
    agent = sample_agent.create_sample_agent(tmp_path / "agent", scale=1, seed=10)
    ok(run_cli("backup", "--config", agent.config_path, repo=repo_path))
    index_files_before = objects.names("index/")
    with held_lock(objects, exclusive=False):
        r = run_cli("repair", "index", repo=repo_path, env=cli_env(SNAPSTORE_LOCK_WAIT="0.5"))
    assert r.returncode == 11, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snapstore: "), r.stderr
    assert "lock" in lines[0] and "Traceback" not in r.stderr
    assert objects.names("index/") == index_files_before
    # Once the lock is free, the same command works.
    ok(run_cli("repair", "index", repo=repo_path, env=cli_env(SNAPSTORE_LOCK_WAIT="0.5")))


def test_backup_proceeds_under_a_shared_lock(tmp_path, repo_path, objects):
    agent = sample_agent.create_sample_agent(tmp_path / "agent", scale=1, seed=11)
    state = table_checksums(Path(agent.db_path))
    with held_lock(objects, exclusive=False):
        # Finishes while another shared holder (another backup) is inside: no waiting at all.
        r = run_cli("backup", "--config", agent.config_path, "--json", repo=repo_path,
                    env=cli_env(SNAPSTORE_LOCK_WAIT="0"))
        assert r.returncode == 0, r.stderr
    check_dump(repo_path, json.loads(r.stdout)["snapshot_id"], tmp_path / "d.db", state)


def test_backup_waits_for_an_exclusive_lock_holder(tmp_path, repo_path, objects):
    agent = sample_agent.create_sample_agent(tmp_path / "agent", scale=1, seed=12)
    state = table_checksums(Path(agent.db_path))

    # With a short wait, a backup against a repository under repair fails cleanly and stores nothing.
    with held_lock(objects, exclusive=True):
        r = run_cli("backup", "--config", agent.config_path, repo=repo_path, env=cli_env(SNAPSTORE_LOCK_WAIT="0.5"))
    assert r.returncode == 11, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snapstore: ") and "Traceback" not in r.stderr
    assert Repository.open(repo_path).snapshot_ids() == []

    # With the default wait it blocks until the exclusive holder is done, then lands.
    events = []
    with held_lock(objects, exclusive=True):
        proc = popen_cli("backup", "--config", agent.config_path, "--json", repo=repo_path)
        wait_for(lambda: tried_lock(proc.pid, objects) or proc.poll() is not None,
                 what="backup to reach the repository lock", interval=0.001)
        for _ in range(20):
            assert proc.poll() is None, f"backup ran under an exclusive lock: {proc.communicate()}"
            assert Repository.open(repo_path).snapshot_ids() == []
            time.sleep(0.02)
        events.append("exclusive lock released")
    out, err = proc.communicate(timeout=120)
    events.append("backup finished")
    assert proc.returncode == 0, err
    assert events == ["exclusive lock released", "backup finished"]
    check_dump(repo_path, json.loads(out)["snapshot_id"], tmp_path / "d.db", state)
