"""restore_memory_type, recover_specific_memories and recover_database_only (SQLite and PostgreSQL)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from api_helpers import db_count, db_execute, db_rows, fts_consistent, fts_matches, logical_rows
from snapstore import AgentWrapper, recover_database_only, recover_specific_memories
from snapstore.sources.postgres.connect import PgTarget
from snapstore.manifest import list_snapshots
from snapstore.restore import restore

DB = Path("configs/sqlite.db")
WORD = "zanzibarquokka"


@pytest.fixture
def agent(home) -> AgentWrapper:
    agent = AgentWrapper("./configs/mirix.yaml")
    assert agent.save_agent("./my_backup", include_logs=True)["success"]
    return agent


def test_restore_memory_type_keeps_search_in_step(agent):
    doc = json.loads(Path("my_backup/memories/episodic_memory.json").read_text())
    saved = logical_rows(DB, "episodic_memory")
    others = {t: db_rows(DB, t) for t in ("semantic_memory", "messages", "agents")}
    db_execute(DB, f"UPDATE episodic_memory SET summary = summary || ' {WORD}' "
                   "WHERE rowid IN (SELECT rowid FROM episodic_memory LIMIT 3)",
               "DELETE FROM episodic_memory WHERE rowid IN (SELECT max(rowid) FROM episodic_memory)")
    assert fts_matches(DB, "episodic_memory", WORD) == 3
    result = agent.restore_memory_type("episodic", doc)
    assert result["success"], result.get("error")
    assert result["table"] == "episodic_memory" and result["inserted"] == len(doc["rows"])
    assert logical_rows(DB, "episodic_memory") == saved
    assert fts_matches(DB, "episodic_memory", WORD) == 0 and fts_consistent(DB, "episodic_memory")
    assert {t: db_rows(DB, t) for t in others} == others
    # the safety snapshot brings the changed state back
    safety = result["safety_snapshot_id"]
    assert "pre-restore" in [s for s in list_snapshots(agent.repository) if s.id == safety][0].tags
    restore(agent.repository, safety, DB)
    assert fts_matches(DB, "episodic_memory", WORD) == 3


def test_restore_memory_type_accepts_the_file_names_types(agent):
    doc = json.loads(Path("my_backup/memories/knowledge_vault.json").read_text())
    assert agent.restore_memory_type("knowledge_vault", doc)["success"]
    doc = json.loads(Path("my_backup/memories/core_memory.json").read_text())
    assert agent.restore_memory_type("core_memory", doc)["success"]


def test_recover_specific_memories_is_one_transaction(agent, monkeypatch):
    saved = {t: logical_rows(DB, t) for t in ("block", "semantic_memory")}
    db_execute(DB, "DELETE FROM block", "DELETE FROM semantic_memory")
    recovered = recover_specific_memories("./my_backup", ["core", "semantic", "knowledge_vault"])
    results = recovered.recovery_results
    assert set(results["memory_types"]) == {"core", "semantic", "knowledge_vault"} and results["skipped"] == []
    assert {t: logical_rows(DB, t) for t in saved} == saved
    assert len([s for s in list_snapshots(recovered.repository) if "pre-restore" in s.tags]) == 1
    # a memory file the backup lacks is skipped, as in the reference
    Path("my_backup/memories/resource_memory.json").unlink()
    # ... but the folder no longer passes its checksums, so nothing is restored from it
    with pytest.raises(Exception, match="missing"):
        recover_specific_memories("./my_backup", ["resource"])


def test_recover_database_only_sqlite_into_live_database(agent):
    before = {t: db_rows(DB, t) for t in ("messages", "episodic_memory", "agents")}
    db_execute(DB, "DELETE FROM messages", "UPDATE agents SET name = 'x'")
    live_after_change = db_rows(DB, "messages")
    result = recover_database_only("./my_backup", agent)
    assert result["success"], result.get("error")
    assert result["database_type"] == "sqlite" and result["tables"]["messages"] == len(before["messages"])
    assert {t: db_rows(DB, t) for t in before} == before
    assert fts_consistent(DB, "messages")
    # the pre-restore snapshot holds the state just before the recovery
    restore(agent.repository, result["safety_snapshot_id"], DB)
    assert db_rows(DB, "messages") == live_after_change
    assert not list(DB.parent.glob(".snapstore-recover-*"))


def test_recover_database_only_into_a_new_file_and_from_compressed_dump(agent, tmp_path):
    assert agent.save_agent("./compressed", compress=True)["success"]
    assert Path("compressed/database/mirix_dump.sql.zst").is_file()
    target = tmp_path / "rebuilt.db"
    result = recover_database_only("./compressed", target=target)
    assert result["success"], result.get("error")
    assert result["safety_snapshot_id"] is None
    assert db_count(target, "messages") == db_count(DB, "messages")
    result = recover_database_only("./compressed", target=f"sqlite:///{tmp_path / 'again.db'}")
    assert result["success"] and (tmp_path / "again.db").is_file()


def test_psql_gets_the_password_through_its_environment():
    target = PgTarget.from_url("postgresql+psycopg://mirix:s%40cret@db.example:5433/mirix?sslmode=require")
    assert "s@cret" not in target.conninfo() and "cret" not in target.label
    assert "dbname=mirix" in target.conninfo() and "sslmode=require" in target.conninfo()
    assert target.env()["PGPASSWORD"] == "s@cret"


@pytest.mark.postgres
def test_recover_database_only_postgres(postgres_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the safety snapshot's default repository is ./.snapstore
    source = postgres_server.create_database()
    subprocess.run([postgres_server.bin("psql"), "-X", "-q", "-d", postgres_server.url(source), "-c",
                    "CREATE TABLE episodic_memory (id text PRIMARY KEY, summary text);"
                    "INSERT INTO episodic_memory VALUES ('ep-1', 'first'), ('ep-2', 'second');"],
                   check=True, env=postgres_server.env())
    folder = tmp_path / "pg_backup"
    (folder / "database").mkdir(parents=True)
    with open(folder / "database" / "mirix_dump.sql", "wb") as out:
        subprocess.run([postgres_server.bin("pg_dump"), "-d", postgres_server.url(source)], stdout=out, check=True,
                       env=postgres_server.env())
    target = postgres_server.create_database()
    result = recover_database_only(folder, target=postgres_server.url(target))
    assert result["success"], result.get("error")
    assert result["database_type"] == "postgresql"
    count = subprocess.run([postgres_server.bin("psql"), "-X", "-At", "-d", postgres_server.url(target), "-c",
                            "SELECT count(*) FROM episodic_memory"], capture_output=True, text=True, check=True,
                           env=postgres_server.env()).stdout.strip()
    assert count == "2"
    # into a database that already has the tables: refused as a whole, nothing changed
    again = recover_database_only(folder, target=postgres_server.url(target))
    assert again["success"] is False and "nothing was changed" in again["error"]
    count = subprocess.run([postgres_server.bin("psql"), "-X", "-At", "-d", postgres_server.url(target), "-c",
                            "SELECT count(*) FROM episodic_memory"], capture_output=True, text=True, check=True,
                           env=postgres_server.env()).stdout.strip()
    assert count == "2"
    # a PostgreSQL dump is not loaded into SQLite
    wrong = recover_database_only(folder, target=tmp_path / "x.db")
    assert wrong["success"] is False and "postgresql dump" in wrong["error"]
    shutil.rmtree(folder)
