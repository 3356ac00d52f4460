"""Selective restore, its safety snapshot and undo, dry runs, and config/logs restores.

The live agent changes after its snapshot (a day of use from ``mutate_agent`` plus
direct SQL on ``episodic_memory`` and ``semantic_memory``); then
``snapstore restore latest --to LIVE_DB --memory-type episodic`` must bring back
only the episodic memories, leave every other row as it was just before, keep the
FTS index of the restored table consistent, and leave a ``pre-restore`` snapshot
that undoes it.
"""
from __future__ import annotations

import json
import re
import shlex
import sqlite3
from pathlib import Path

import pytest

from dbcompare import check_database, copy_db, ro
from backends import RepoObjects
from helpers import ok, run_cli
from snapstore.backup import backup_agent
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.sample_agent import FTS_COLUMNS, create_sample_agent, mutate_agent
from snapstore.sources.agent import load_agent_source

MARK_WORD = "zanzibarquokka"  # a word that exists only in rows changed after the snapshot


# -- helpers -------------------------------------------------------------------------------

def content_tables(conn: sqlite3.Connection) -> list[str]:
    """Ordinary tables and FTS virtual tables; FTS shadow tables are left out."""
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                        "ORDER BY name").fetchall()
    virtual = [n for n, s in rows if s.upper().startswith("CREATE VIRTUAL")]
    return [n for n, _ in rows if not any(n.startswith(v + "_") for v in virtual)]


def db_state(path: Path) -> dict[str, list[tuple]]:
    conn = ro(path)
    try:
        return {t: conn.execute(f'SELECT rowid, * FROM "{t}" ORDER BY rowid').fetchall()
                for t in content_tables(conn)}
    finally:
        conn.close()


def shadow_state(path: Path) -> dict[str, list[tuple]]:
    """The FTS5 shadow tables (index segments, doc sizes, config), in key order."""
    conn = ro(path)
    try:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name GLOB '*_fts_*' "
                                            "ORDER BY name")]
        out = {}
        for name in names:
            ncols = len(conn.execute(f'SELECT * FROM "{name}" LIMIT 0').description)
            order = ", ".join(str(i) for i in range(1, ncols + 1))
            out[name] = conn.execute(f'SELECT * FROM "{name}" ORDER BY {order}').fetchall()
        return out
    finally:
        conn.close()


def fts_search(path: Path, fts: str, word: str) -> list[int]:
    conn = ro(path)
    try:
        return [r for (r,) in conn.execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY rowid",
                                           (f'"{word}"',))]
    finally:
        conn.close()


def db_files(db: Path) -> dict[str, bytes]:
    """The bytes of the database file and of its write-ahead log (absent and empty are the same).

    ``-shm`` is left out: it is SQLite's shared-memory index, rebuilt by any reader,
    and an empty ``-wal`` is created and removed by mere readers of a WAL database.
    """
    wal = db.with_name(db.name + "-wal")
    return {"db": db.read_bytes(), "wal": wal.read_bytes() if wal.exists() else b"",
            "journal": db.with_name(db.name + "-journal").exists()}


def change_live_agent(agent) -> None:
    """A day of use, then edits no day of use could undo by chance: episodic and semantic rows."""
    mutate_agent(agent.directory, fraction=0.03, seed=17)
    conn = sqlite3.connect(agent.db_path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"UPDATE episodic_memory SET details = details || ' {MARK_WORD}' "
                     "WHERE rowid IN (SELECT rowid FROM episodic_memory ORDER BY rowid LIMIT 3)")
        conn.execute("DELETE FROM episodic_memory WHERE rowid = (SELECT max(rowid) FROM episodic_memory)")
        for table, prefix in (("episodic_memory", "ep_mem"), ("semantic_memory", "sem_item")):
            cols = [c[1] for c in conn.execute(f'PRAGMA table_info("{table}")')]
            col_sql = ", ".join(f'"{c}"' for c in cols)
            select = ", ".join(
                f"'{prefix}-added-after-snapshot'" if c == "id"
                else f"details || ' {MARK_WORD}'" if c == "details" else f'"{c}"' for c in cols)
            conn.execute(f'INSERT INTO "{table}" ({col_sql}) SELECT {select} FROM "{table}" '
                         "ORDER BY rowid LIMIT 1")
        conn.execute(f"UPDATE semantic_memory SET summary = summary || ' {MARK_WORD}' "
                     "WHERE rowid = (SELECT min(rowid) FROM semantic_memory)")
        conn.execute("COMMIT")
    finally:
        conn.close()


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def world(tmp_path, repo_url):
    """An agent, its snapshot (and a reference copy of the database at that moment), then changes;
    the repository is a local directory, then an S3 prefix."""
    agent = create_sample_agent(tmp_path / "agent", scale=1, seed=23)
    repo_path = repo_url
    repo = Repository.init(repo_path)
    snap = backup_agent(repo, load_agent_source(agent.config_path), include_logs=True).snapshot
    snapshot_db = copy_db(Path(agent.db_path), tmp_path / "at-snapshot.db")
    change_live_agent(agent)
    live = Path(agent.db_path)
    before = db_state(live)
    at_snapshot = db_state(snapshot_db)
    for table in ("episodic_memory", "semantic_memory"):
        assert before[table] != at_snapshot[table], f"{table} must have changed since the snapshot"
    return {"root": tmp_path, "agent": agent, "repo": repo, "repo_path": repo_path, "snap": snap,
            "snapshot_db": snapshot_db, "live": live, "before": before, "at_snapshot": at_snapshot}


# -- selective restore ---------------------------------------------------------------------

def test_selective_restore_of_episodic_memory(world):
    live, before, at_snapshot = world["live"], world["before"], world["at_snapshot"]
    shadows_before = shadow_state(live)
    result = ok(run_cli("restore", "latest", "--to", live, "--memory-type", "episodic", repo=world["repo_path"]))

    after = db_state(live)
    assert after["episodic_memory"] == at_snapshot["episodic_memory"]
    assert after["episodic_memory_fts"] == at_snapshot["episodic_memory_fts"]
    assert after["semantic_memory"] == before["semantic_memory"], "semantic memory must keep its new rows"
    assert any(row[1] == "sem_item-added-after-snapshot" for row in after["semantic_memory"])
    for table in before:
        if table not in ("episodic_memory", "episodic_memory_fts"):
            assert after[table] == before[table], f"{table} must be left alone"
    shadows_after = shadow_state(live)
    assert len(shadows_after) == 4 * len(FTS_COLUMNS)
    for name, rows in shadows_before.items():
        if not name.startswith("episodic_memory_fts_"):
            assert shadows_after[name] == rows, f"the index {name} of an untouched table changed"
    check_database(live)

    # FTS answers for episodic memory are the snapshot's; semantic still finds the new rows
    assert fts_search(world["snapshot_db"], "episodic_memory_fts", MARK_WORD) == []
    assert fts_search(live, "episodic_memory_fts", MARK_WORD) == []
    searched = 0
    for row in at_snapshot["episodic_memory_fts"][::8]:  # (rowid, summary, details)
        for word in sorted(set(re.findall(r"[A-Za-z]{6,}", f"{row[1]} {row[2]}")))[:2]:
            expected = fts_search(world["snapshot_db"], "episodic_memory_fts", word)
            assert row[0] in expected, word
            assert fts_search(live, "episodic_memory_fts", word) == expected, word
            searched += 1
    assert searched >= 5
    assert len(fts_search(live, "semantic_memory_fts", MARK_WORD)) == 2

    # the safety snapshot: one, tagged pre-restore, announced with an undo command that works
    safety = [s for s in list_snapshots(Repository.open(world["repo_path"])) if "pre-restore" in s.tags]
    assert len(safety) == 1
    assert safety[0].id[:8] in result.stdout
    undo = re.search(r"to undo: (snapstore .+)$", result.stdout, re.M)
    assert undo, result.stdout
    args = shlex.split(undo.group(1))[1:]
    assert args[0] == "--repo" and args[3][:8] == safety[0].id[:8]
    assert Repository.open(args[1]).config.repo_id == world["repo"].config.repo_id  # absolute, or the URL
    ok(run_cli(*args, cwd="/"))  # pasted as printed, anywhere: no --repo added, no relative path
    assert db_state(live) == before, "restoring the pre-restore snapshot must undo the restore"
    check_database(live)


def test_selective_restore_through_the_library(world):
    from snapstore.restore import restore

    result = restore(world["repo"], world["snap"].id, world["live"], memory_types="episodic,semantic")
    after = db_state(world["live"])
    for table in ("episodic_memory", "semantic_memory"):
        assert after[table] == world["at_snapshot"][table]
    for table in after:
        if not table.startswith(("episodic_memory", "semantic_memory")):
            assert after[table] == world["before"][table], table
    assert result.safety_snapshot_id and result.undo_hint
    check_database(world["live"])


def test_selective_restore_of_conversations(world):
    ok(run_cli("restore", world["snap"].id, "--to", world["live"], "--only", "conversations",
               repo=world["repo_path"]))
    after = db_state(world["live"])
    assert after["messages"] == world["at_snapshot"]["messages"]
    assert after["messages"] != world["before"]["messages"]
    for table in after:
        if not table.startswith("messages"):
            assert after[table] == world["before"][table], table
    check_database(world["live"])


# -- dry run -------------------------------------------------------------------------------

def expected_changes(before: dict, at_snapshot: dict, tables: list[str]) -> dict[str, dict[str, int]]:
    out = {}
    for t in tables:
        live, snap = set(before[t]), set(at_snapshot[t])
        out[t] = {"deleted": len(live - snap), "inserted": len(snap - live)}
    return out


@pytest.mark.parametrize("args, tables", [
    (("--memory-type", "episodic"), ["episodic_memory"]),
    (("--memory-type", "episodic,semantic"), ["episodic_memory", "semantic_memory"]),
    ((), None),
], ids=["episodic", "episodic+semantic", "whole-database"])
def test_dry_run_changes_nothing_and_reports_rows_per_table(world, args, tables):
    live, repo_path = world["live"], world["repo_path"]
    if tables is None:
        tables = [t for t in world["before"] if not t.endswith("_fts")]
    expected = expected_changes(world["before"], world["at_snapshot"], tables)
    assert expected["episodic_memory"]["deleted"] and expected["episodic_memory"]["inserted"]
    files_before, repo_before = db_files(live), RepoObjects(repo_path).state()

    text = ok(run_cli("restore", "latest", "--to", live, *args, "--dry-run", repo=repo_path)).stdout
    doc = json.loads(ok(run_cli("restore", "latest", "--to", live, *args, "--dry-run", "--json",
                                repo=repo_path)).stdout)

    assert db_files(live) == files_before, "a dry run must not touch the target"
    assert RepoObjects(repo_path).state() == repo_before, "a dry run must not write to the repository"
    assert doc["dry_run"] is True and doc["safety_snapshot_id"] is None
    reported = {t: c for t, c in doc["tables"].items() if c["deleted"] or c["inserted"]}
    assert reported == {t: c for t, c in expected.items() if c["deleted"] or c["inserted"]}
    for table, change in reported.items():
        assert re.search(rf"^\s+{table}\s+-{change['deleted']}\s+\+{change['inserted']}\s*$", text, re.M), (
            f"no line for {table} in:\n{text}")


# -- config and logs -----------------------------------------------------------------------

def test_config_and_logs_restore_to_a_directory(world):
    files_dir = world["root"] / "restored-files"
    agent_dir = Path(world["agent"].directory)
    db_before = db_files(world["live"])
    result = ok(run_cli("restore", "latest", "--to", world["live"], "--only", "config,logs",
                        "--files-dir", files_dir, repo=world["repo_path"]))

    assert (files_dir / "config/mirix.yaml").read_bytes() == (agent_dir / "mirix.yaml").read_bytes()
    for name in ("agent.log", "security.log"):
        assert (files_dir / "logs" / name).read_bytes() == (agent_dir / "logs" / name).read_bytes()
    env = (files_dir / "config/environment.env").read_text()
    assert "MIRIX_LOG_LEVEL=INFO" in env and "OPENAI_API_KEY=" in env
    written = {p.relative_to(files_dir).as_posix() for p in files_dir.rglob("*") if p.is_file()}
    assert written == {"config/mirix.yaml", "config/environment.env", "logs/agent.log", "logs/security.log"}
    assert str(files_dir / "config/mirix.yaml") in result.stdout
    assert db_files(world["live"]) == db_before, "restoring config and logs must not touch the database"


def test_dry_run_into_a_new_file_creates_nothing(world):
    new = world["root"] / "new-target.db"
    repo_before = RepoObjects(world["repo_path"]).state()
    entries_before = sorted(p.name for p in world["root"].iterdir())
    doc = json.loads(ok(run_cli("restore", "latest", "--to", new, "--dry-run", "--json",
                                repo=world["repo_path"])).stdout)
    assert sorted(p.name for p in world["root"].iterdir()) == entries_before
    assert RepoObjects(world["repo_path"]).state() == repo_before
    inserted = {t: c["inserted"] for t, c in doc["tables"].items()}
    expected = {t: len(rows) for t, rows in world["at_snapshot"].items() if not t.endswith("_fts")}
    assert {t: n for t, n in inserted.items() if t in expected} == expected
    assert all(c["deleted"] == 0 for c in doc["tables"].values())


def test_dry_run_from_a_folder_changes_nothing(world):
    folder = world["root"] / "exported"
    ok(run_cli("export", world["snap"].id, folder, repo=world["repo_path"]))
    live = world["live"]
    files_before, repo_before = db_files(live), RepoObjects(world["repo_path"]).state()
    ok(run_cli("restore", folder, "--to", live, "--memory-type", "episodic", "--dry-run", repo=world["repo_path"]))
    assert db_files(live) == files_before
    assert RepoObjects(world["repo_path"]).state() == repo_before, "a dry run must not write to the repository"
