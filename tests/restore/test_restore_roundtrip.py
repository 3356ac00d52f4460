"""Whole restores are exact: snapshot -> restore, and snapshot -> export -> import -> restore.

"Exact" means the same schema (tables, indexes, triggers, FTS tables), every table
row for row with its rowid (FTS shadow tables included), the same answers to FTS
searches, ``PRAGMA integrity_check`` ok and FTS5's own integrity check (with the
``rank`` argument, which also compares the index with its content table).
"""
from __future__ import annotations

import json
import sqlite3

import pytest

from dbcompare import assert_same_database, copy_db, ro, table_rows
from backends import BACKENDS, repo_location
from helpers import ok, run_cli
from snapstore.backup import backup_agent
from snapstore.importer import import_folder
from snapstore.repository import Repository
from snapstore.restore import restore
from snapstore.sample_agent import create_sample_agent, mutate_agent
from snapstore.sources.agent import load_agent_source


# -- helpers -------------------------------------------------------------------------------

# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
def world(tmp_path_factory, request):
    """Two snapshots of one agent: as created, and after a day of use (in a local and an S3 repository)."""
    root = tmp_path_factory.mktemp("roundtrip")
    agent = create_sample_agent(root / "agent", scale=1, seed=41)
    repo_path = repo_location(request, request.param, root / "repo")
    repo = Repository.init(repo_path)
    source = load_agent_source(agent.config_path)
    first = backup_agent(repo, source, include_logs=True).snapshot
    first_db = copy_db(agent.db_path, root / "first.db")
    mutate_agent(agent.directory, fraction=0.05, seed=3)
    second = backup_agent(repo, source, include_logs=True).snapshot
    second_db = copy_db(agent.db_path, root / "second.db")
    return {"root": root, "agent": agent, "repo": repo, "repo_path": repo_path,
            "snaps": {"first": (first, first_db), "second": (second, second_db)}}


# -- tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["first", "second"])
def test_restore_to_a_new_file_is_exact(world, tmp_path, which):
    snap, reference = world["snaps"][which]
    target = tmp_path / "new.db"
    result = ok(run_cli("restore", snap.id, "--to", target, repo=world["repo_path"]))
    assert "restored" in result.stdout
    assert_same_database(reference, target)
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "new.db")
    assert leftovers == [], f"restore left files beside the target: {leftovers}"


def test_restore_latest_through_the_library(world, tmp_path):
    snap, reference = world["snaps"]["second"]
    target = tmp_path / "lib.db"
    result = restore(world["repo"], snap.id, target)
    assert result.snapshot_id == snap.id and result.safety_snapshot_id is None
    assert_same_database(reference, target)


def test_whole_restore_over_an_existing_database(world, tmp_path):
    """Restoring the older snapshot over a copy of the newer database brings back the older one exactly."""
    first, first_db = world["snaps"]["first"]
    _, second_db = world["snaps"]["second"]
    target = copy_db(second_db, tmp_path / "existing.db")
    ok(run_cli("restore", first.id, "--to", target, repo=world["repo_path"]))
    assert_same_database(first_db, target)


def test_whole_restore_under_an_open_connection_with_a_write_ahead_log(world, tmp_path):
    """The agent still holds the database open, with committed changes only in its -wal file."""
    first, first_db = world["snaps"]["first"]
    _, second_db = world["snaps"]["second"]
    target = copy_db(second_db, tmp_path / "live.db")
    held = sqlite3.connect(target, isolation_level=None)
    try:
        assert held.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        held.execute("PRAGMA wal_autocheckpoint=0")
        held.execute("INSERT INTO agent_stats (name, value) VALUES ('only-in-the-wal', 1)")
        assert (tmp_path / "live.db-wal").stat().st_size > 0
        doc = json.loads(ok(run_cli("restore", first.id, "--to", target, "--json", repo=world["repo_path"])).stdout)
        expected = ro(first_db)
        try:
            for table in ("agent_stats", "episodic_memory", "messages"):
                assert held.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid').fetchall() == \
                    table_rows(expected, table), f"the open connection sees a stale {table}"
        finally:
            expected.close()
    finally:
        held.close()
    assert_same_database(first_db, target)

    # the safety snapshot holds what was committed, the -wal part included
    undo = tmp_path / "undo.db"
    ok(run_cli("restore", doc["safety_snapshot_id"], "--to", undo, repo=world["repo_path"]))
    conn = ro(undo)
    try:
        assert conn.execute("SELECT value FROM agent_stats WHERE name = 'only-in-the-wal'").fetchone() == (1,)
    finally:
        conn.close()


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
def test_export_import_restore_round_trip(world, tmp_path, compress):
    snap, reference = world["snaps"]["second"]
    folder = tmp_path / "folder"
    ok(run_cli("export", snap.id, folder, *(["--compress"] if compress else []), repo=world["repo_path"]))

    # into a fresh repository (the folder is the only source), then back into the first one
    other_repo = tmp_path / "other-repo"
    ok(run_cli("init", repo=other_repo))
    for repo_path in (other_repo, world["repo_path"]):
        imported = json.loads(ok(run_cli("import", folder, "--json", repo=repo_path)).stdout)
        target = tmp_path / f"restored-{'other' if repo_path == other_repo else 'world'}.db"
        ok(run_cli("restore", imported["snapshot_id"], "--to", target, repo=repo_path))
        assert_same_database(reference, target)


def test_restore_straight_from_a_folder(world, tmp_path):
    snap, reference = world["snaps"]["first"]
    folder = tmp_path / "folder"
    ok(run_cli("export", snap.id, folder, repo=world["repo_path"]))
    target = tmp_path / "from-folder.db"
    ok(run_cli("restore", folder, "--to", target, repo=world["repo_path"]))
    assert_same_database(reference, target)


def test_import_of_an_export_is_deduplicated(world, tmp_path):
    """The database pages of an exported snapshot are all in the repository already."""
    snap, _ = world["snaps"]["first"]
    folder = tmp_path / "folder"
    ok(run_cli("export", snap.id, folder, repo=world["repo_path"]))
    result = import_folder(world["repo"], folder)
    db_size = (folder / "database/sqlite.db").stat().st_size
    assert result.new_data_bytes < db_size // 50, result.as_dict()
    assert result.added_bytes < db_size // 50, result.as_dict()
