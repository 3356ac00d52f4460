"""A restore killed with SIGKILL mid-way never leaves a damaged target: an existing database
is the old one or the restored one (never a mix), a new target is absent or whole; the next
restore removes the leftovers and succeeds."""
from __future__ import annotations

import shutil

import pytest

from dbcompare import assert_same_database, copy_db
from backends import BACKENDS, repo_location
from helpers import (backed_up_agent, integrity_check, kill_group, ok, popen_cli, run_cli, snapshot_ids,
                     table_checksums, wait_for)
from snapstore.sample_agent import mutate_agent


@pytest.fixture(scope="module", params=BACKENDS)
def world(tmp_path_factory, request):
    """A scale-3 agent backed up into a local directory, then into an S3 prefix."""
    root = tmp_path_factory.mktemp("restore-crash")
    agent, repo_path = backed_up_agent(root, scale=3, seed=9, repo=repo_location(request, request.param, root / "repo"))
    [snapshot_id] = snapshot_ids(repo_path)  # restores add pre-restore snapshots: name this one
    snapshot_db = copy_db(agent.db_path, root / "at-snapshot.db")
    mutate_agent(agent.directory, fraction=0.2, seed=10)
    changed_db = copy_db(agent.db_path, root / "changed.db")
    return {"root": root, "repo_path": repo_path, "snapshot_id": snapshot_id, "snapshot_db": snapshot_db,
            "changed_db": changed_db}


def leftovers(parent):
    return [p for p in parent.iterdir() if ".tmp-" in p.name]


def kill_when_restoring(world, target):
    proc = popen_cli("restore", world["snapshot_id"], "--to", target, repo=world["repo_path"])
    wait_for(lambda: proc.poll() is not None or any(p.name.startswith(".snapstore-restore") for p in leftovers(target.parent)),
             what="the restore to start", interval=0.002)
    assert proc.poll() is None, "the restore finished before it could be killed"
    kill_group(proc)
    proc.communicate()


def test_sigkill_mid_restore_over_an_existing_database(world, tmp_path):
    target = tmp_path / "agent.db"
    shutil.copyfile(world["changed_db"], target)
    old = table_checksums(target)
    kill_when_restoring(world, target)
    assert integrity_check(target) == "ok"
    assert table_checksums(target) in (old, table_checksums(world["snapshot_db"]))
    assert leftovers(tmp_path)  # the killed run's work folder

    ok(run_cli("restore", world["snapshot_id"], "--to", target, repo=world["repo_path"]))
    assert leftovers(tmp_path) == []
    assert_same_database(world["snapshot_db"], target)


def test_sigkill_mid_restore_to_a_new_file(world, tmp_path):
    target = tmp_path / "new.db"
    kill_when_restoring(world, target)
    if target.exists():  # only ever renamed into place whole
        assert_same_database(world["snapshot_db"], target)
        target.unlink()
    ok(run_cli("restore", world["snapshot_id"], "--to", target, repo=world["repo_path"]))
    assert leftovers(tmp_path) == []
    assert_same_database(world["snapshot_db"], target)
