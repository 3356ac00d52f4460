"""Naming snapshots: ``latest`` passes over restores' safety snapshots; id prefixes; the
``--agent``/``--host`` selection and ``latest``'s ambiguity across agents and hosts."""
from __future__ import annotations

import shutil

import pytest

from snapstore.backup import backup_agent
from snapstore.errors import AmbiguousSnapshot, SnapshotNotFound
from snapstore.manifest import SAFETY_TAG, Selection, list_snapshots, resolve_snapshot
from snapstore.repository import Repository
from snapstore.restore import restore
from snapstore.sample_agent import create_sample_agent, mutate_agent
from snapstore.sources.agent import load_agent_source


def test_latest_is_not_a_safety_snapshot(tmp_path):
    agent = create_sample_agent(tmp_path / "agent", scale=0.2, seed=3)
    repo = Repository.init(tmp_path / "repo")
    first = backup_agent(repo, load_agent_source(agent.config_path)).snapshot
    live = tmp_path / "live.db"
    shutil.copyfile(agent.db_path, live)
    mutate_agent(agent.directory, fraction=0.3, seed=4)
    shutil.copyfile(agent.db_path, live)

    done = restore(repo, "latest", live)
    assert done.snapshot_id == first.id and done.safety_snapshot_id
    safety = [s for s in list_snapshots(repo) if SAFETY_TAG in s.tags]
    assert [s.id for s in safety] == [done.safety_snapshot_id]
    assert list_snapshots(repo)[-1].id == done.safety_snapshot_id  # the newest...
    assert resolve_snapshot(repo, "latest").id == first.id          # ...but not "latest"
    again = restore(repo, "latest", live)  # a second restore of latest must not undo the first
    assert again.snapshot_id == first.id


def test_a_repository_of_safety_snapshots_only_still_has_a_latest(tmp_path):
    agent = create_sample_agent(tmp_path / "agent", scale=0.2, seed=5)
    repo = Repository.init(tmp_path / "repo")
    snap = backup_agent(repo, load_agent_source(agent.config_path), tags=[SAFETY_TAG]).snapshot
    assert resolve_snapshot(repo, "latest").id == snap.id


def test_id_prefixes(tmp_path):
    agent = create_sample_agent(tmp_path / "agent", scale=0.2, seed=6)
    repo = Repository.init(tmp_path / "repo")
    with pytest.raises(SnapshotNotFound, match="no snapshots yet"):
        resolve_snapshot(repo, "latest")
    snap = backup_agent(repo, load_agent_source(agent.config_path)).snapshot
    assert resolve_snapshot(repo, snap.id[:4].upper()).id == snap.id
    with pytest.raises(SnapshotNotFound):
        resolve_snapshot(repo, snap.id[:3])  # too short to name anything
    with pytest.raises(SnapshotNotFound):
        resolve_snapshot(repo, "ffffffffff" if not snap.id.startswith("ff") else "0000000000")


def test_verify_latest_is_the_same_snapshot_as_everywhere_else(tmp_path):
    from snapstore.verify.report import DamageLog, VerifyReport
    from snapstore.verify.snapshots import load_manifests

    agent = create_sample_agent(tmp_path / "agent", scale=0.2, seed=8)
    repo = Repository.init(tmp_path / "repo")
    first = backup_agent(repo, load_agent_source(agent.config_path)).snapshot
    backup_agent(repo, load_agent_source(agent.config_path), tags=[SAFETY_TAG])
    chosen = load_manifests(repo, ["latest"], DamageLog(), VerifyReport("quick"))
    assert [s.id for s in chosen] == [first.id] == [resolve_snapshot(repo, "latest").id]


# -- many agents and hosts in one repository: one selection rule -----------------------------

@pytest.fixture
def shared_repo(tmp_path):
    """Snapshots of two agents, one of them from two hosts (all of the same small database)."""
    agent = create_sample_agent(tmp_path / "agent", scale=0.05, seed=5)
    repo = Repository.init(tmp_path / "repo")
    (tmp_path / "bare").mkdir()
    db = shutil.copyfile(agent.db_path, tmp_path / "bare" / "sqlite.db")  # no mirix.yaml beside it to name it
    snaps = {}
    for name, host in (("alice", "h1"), ("bob", "h1"), ("alice", "h2"), ("bob", "h1")):
        source = load_agent_source(db_path=db, agent=name)
        snaps[(name, host)] = backup_agent(repo, source, host=host).snapshot
    return repo, snaps


def test_latest_across_agents_is_an_error_naming_them(shared_repo):
    repo, _ = shared_repo
    with pytest.raises(AmbiguousSnapshot) as err:
        resolve_snapshot(repo, "latest")
    assert err.value.exit_code == 2 and "alice, bob" in err.value.message and "--agent" in err.value.message


def test_latest_of_one_agent_and_host(shared_repo):
    repo, snaps = shared_repo
    assert resolve_snapshot(repo, "latest", Selection("bob")).id == snaps[("bob", "h1")].id
    with pytest.raises(AmbiguousSnapshot, match="hosts h1, h2; pass --host"):
        resolve_snapshot(repo, "latest", Selection("alice"))
    assert resolve_snapshot(repo, "latest", Selection("alice", "h2")).id == snaps[("alice", "h2")].id
    with pytest.raises(SnapshotNotFound, match="no snapshots of agent carol.*alice \\(host h1\\)"):
        resolve_snapshot(repo, "latest", Selection("carol"))


def test_an_id_outside_the_selection_is_refused(shared_repo):
    repo, snaps = shared_repo
    bob = snaps[("bob", "h1")]
    assert resolve_snapshot(repo, bob.id[:8]).id == bob.id  # no selection: any id
    with pytest.raises(SnapshotNotFound, match=f"{bob.short_id} is of agent bob on host h1, not of agent alice"):
        resolve_snapshot(repo, bob.id[:8], Selection("alice"))


def test_backup_records_its_host_and_takes_the_parent_of_the_same_host(shared_repo):
    repo, snaps = shared_repo
    assert snaps[("alice", "h2")].host == "h2" and snaps[("alice", "h2")].parent is None  # h1's is not its parent
    first_bob = [s for s in list_snapshots(repo) if s.agent == "bob"][0]
    assert snaps[("bob", "h1")].parent == first_bob.id
