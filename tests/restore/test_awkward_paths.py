"""Paths with characters that mean something in SQLite URIs (#, ?, %) are just paths.

Unescaped, ``a#b/agent.db`` opens ``a`` (an empty new database): a whole restore
then "restores" into it and empties the real target.  Everything that hands a
path to SQLite must name the very file given.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from backends import BACKENDS, repo_location
from dbcompare import assert_same_database, copy_db
from helpers import backed_up_agent, ok, run_cli, snapshot_ids, table_checksums
from snapstore.sample_agent import mutate_agent


@pytest.fixture(scope="module", params=BACKENDS)
def world(tmp_path_factory, request):
    """One backup of a small agent (in a local and an S3 repository) and the database as it was then."""
    root = tmp_path_factory.mktemp("awkward")
    agent, repo_path = backed_up_agent(root, scale=0.3, seed=17,
                                       repo=repo_location(request, request.param, root / "repo"))
    [snapshot_id] = snapshot_ids(repo_path)
    snapshot_db = copy_db(agent.db_path, root / "at-snapshot.db")
    mutate_agent(agent.directory, fraction=0.3, seed=18)
    return {"root": root, "agent": agent, "repo_path": repo_path, "backend": request.param,
            "snapshot_id": snapshot_id, "snapshot_db": snapshot_db, "changed_db": copy_db(agent.db_path, root / "changed.db")}


@pytest.mark.parametrize("dirname", ["a#b", "what?now", "pct%41x", "sp ace&amp"])
def test_restore_into_a_database_whose_path_has_uri_characters(world, tmp_path, dirname):
    folder = tmp_path / dirname
    folder.mkdir()
    target = folder / "agent.db"
    shutil.copyfile(world["changed_db"], target)
    sid = world["snapshot_id"]
    dry = json.loads(ok(run_cli("restore", sid, "--to", target, "--dry-run", "--json",
                                repo=world["repo_path"], cwd=tmp_path)).stdout)
    real = json.loads(ok(run_cli("restore", sid, "--to", target, "--json", repo=world["repo_path"],
                                 cwd=tmp_path)).stdout)
    assert dry["tables"] == real["tables"] and any(c["deleted"] for c in real["tables"].values())
    assert_same_database(world["snapshot_db"], target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [dirname]  # no stray database beside it
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("agent.db-")) == ["agent.db"]


def test_backup_export_and_selective_restore_of_an_agent_in_such_a_path(world, tmp_path, request):
    agent_dir = tmp_path / "x#y?z"
    shutil.copytree(world["agent"].directory, agent_dir)
    repo = repo_location(request, world["backend"], tmp_path / "repo")
    ok(run_cli("init", repo=repo))
    ok(run_cli("backup", "--config", agent_dir / "mirix.yaml", repo=repo))
    ok(run_cli("export", "latest", tmp_path / "out#1", repo=repo))
    subprocess.run(["md5sum", "--quiet", "-c", "verification/checksums.md5"], cwd=tmp_path / "out#1", check=True)
    def rows(db):  # FTS segments are rebuilt by the triggers, so compare the tables themselves
        return {t: d for t, d in table_checksums(db).items() if "_fts" not in t}

    before = rows(agent_dir / "sqlite.db")
    ok(run_cli("restore", "latest", "--to", agent_dir / "sqlite.db", "--memory-type", "episodic", repo=repo))
    assert rows(agent_dir / "sqlite.db") == before  # the same state: nothing lost
