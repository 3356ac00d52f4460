"""The Mirix-compatible API with a PostgreSQL agent (the sample agent on PostgreSQL 18 + pgvector):
save, load (whole and one memory type), AgentWrapper(load_from=…), verify_backup with pg_url,
recover_database_only, and migration both ways between SQLite and PostgreSQL agents."""
from __future__ import annotations

from pathlib import Path

import pytest
from api_helpers import repository_yaml
from pg_agent import assert_same_memories, table_md5s

from snapstore import AgentWrapper, export_for_migration, import_from_migration, recover_database_only, verify_backup

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_agent(home, pg_sample_agent, postgres18_server, monkeypatch):
    """./pg/mirix.yaml: an agent whose database is pg_sample_agent (PostgreSQL 18's own client tools)."""
    monkeypatch.setenv("SNAPSTORE_PG_BIN", str(postgres18_server.bindir))
    Path("pg").mkdir()
    Path("pg/mirix.yaml").write_text(f"agent_name: pg_agent\nmodel_name: gemini-2.0-flash\n"
                                     f"database_url: {pg_sample_agent.url}\n")
    return AgentWrapper("pg/mirix.yaml")


def _edit(agent) -> None:
    with agent.connect() as conn:
        conn.execute("DELETE FROM episodic_memory WHERE id IN (SELECT id FROM episodic_memory LIMIT 5)")
        conn.execute("UPDATE semantic_memory SET details = 'overwritten'")
        conn.execute("DELETE FROM messages WHERE id IN (SELECT id FROM messages LIMIT 7)")


def test_save_and_load_a_postgres_agent(pg_agent, pg_sample_agent, postgres18_server):
    saved = pg_agent.save_agent("./pg_backup", verify_after_backup=True)
    assert saved["success"], saved.get("error")
    assert saved["database_type"] == "postgresql" and Path("pg_backup/database/mirix_dump.sql").is_file()
    assert verify_backup("./pg_backup", pg_url=postgres18_server.url())["valid"]
    original = table_md5s(pg_sample_agent.url)

    _edit(pg_sample_agent)
    edited = table_md5s(pg_sample_agent.url)
    one = pg_agent.load_agent("./pg_backup", {"memories": ["episodic"]})
    assert one["success"], one.get("error")
    now = table_md5s(pg_sample_agent.url)
    assert now["episodic_memory"] == original["episodic_memory"]
    assert now["semantic_memory"] == edited["semantic_memory"] and now["messages"] == edited["messages"]
    assert one["memory_count"] == 42 and one["safety_snapshot_id"] and "***" not in one["undo"]

    whole = pg_agent.load_agent("./pg_backup")
    assert whole["success"], whole.get("error")
    assert table_md5s(pg_sample_agent.url) == original
    assert whole["conversation_count"] == 300


def test_load_from_into_a_new_postgres_database(pg_agent, postgres18_server, pg_sample_agent):
    assert pg_agent.save_agent("./pg_backup")["success"]
    postgres18_server.drop_database("loaded_agent")
    Path("new").mkdir()
    Path("new/mirix.yaml").write_text(f"agent_name: new\ndatabase_url: {postgres18_server.url('loaded_agent')}\n"
                                      + repository_yaml("pg/.snapstore"))
    agent = AgentWrapper("new/mirix.yaml", load_from="./pg_backup")
    assert agent.last_load["success"]
    assert table_md5s(postgres18_server.url("loaded_agent")) == table_md5s(pg_sample_agent.url)


def test_recover_database_only_into_a_new_postgres_database(pg_agent, postgres18_server, pg_sample_agent):
    assert pg_agent.save_agent("./pg_backup")["success"]
    name = postgres18_server.create_database()
    result = recover_database_only("./pg_backup", target=postgres18_server.url(name))
    assert result["success"], result.get("error")
    assert table_md5s(postgres18_server.url(name)) == table_md5s(pg_sample_agent.url)


def test_migration_sqlite_agent_to_postgres_and_back(home, postgres18_server, monkeypatch, tmp_path):
    monkeypatch.setenv("SNAPSTORE_PG_BIN", str(postgres18_server.bindir))
    sqlite_db = Path("configs/sqlite.db")
    exported = export_for_migration("./configs/mirix.yaml", "./to_pg")
    assert exported["success"], exported.get("error")
    postgres18_server.drop_database("migrated")
    Path("pg").mkdir()
    Path("pg/mirix.yaml").write_text(f"agent_name: migrated\nmodel_name: m\n"
                                     f"database_url: {postgres18_server.url('migrated')}\n"
                                     + repository_yaml("configs/.snapstore"))
    imported = import_from_migration("./to_pg", "pg/mirix.yaml")
    assert imported["agent"].database_type == "postgresql"
    assert imported["verification"]["all_passed"], imported["verification"]

    # and back: the PostgreSQL agent into a new SQLite agent, memories equal to the original
    back = export_for_migration("pg/mirix.yaml", "./to_sqlite")
    assert back["success"], back.get("error")
    Path("lite").mkdir()
    Path("lite/mirix.yaml").write_text(f"agent_name: lite\nmodel_name: m\ndatabase_url: sqlite:///{Path('lite/agent.db').absolute()}\n"
                                       + repository_yaml("pg/.snapstore"))
    lite = import_from_migration("./to_sqlite", "lite/mirix.yaml")
    assert lite["verification"]["all_passed"], lite["verification"]
    assert_same_memories(sqlite_db, Path("lite/agent.db"))


def test_postgres_folder_without_its_snapshot_loads_from_the_dump(pg_agent, pg_sample_agent, postgres18_server):
    """Another system's repository lacks the folder's snapshot: rows come from mirix_dump.sql."""
    assert pg_agent.save_agent("./pg_backup", compress=True)["success"]
    original = table_md5s(pg_sample_agent.url)
    Path("pg/mirix.yaml").write_text(Path("pg/mirix.yaml").read_text() + "snapstore:\n  repository: elsewhere\n")
    _edit(pg_sample_agent)
    edited = table_md5s(pg_sample_agent.url)
    one = pg_agent.load_agent("./pg_backup", {"memories": ["episodic"]})
    assert one["success"], one.get("error")
    now = table_md5s(pg_sample_agent.url)
    assert now["episodic_memory"] == original["episodic_memory"] and now["messages"] == edited["messages"]
    postgres18_server.drop_database("from_dump")
    Path("new").mkdir()
    Path("new/mirix.yaml").write_text(f"agent_name: new\ndatabase_url: {postgres18_server.url('from_dump')}\n")
    agent = AgentWrapper("new/mirix.yaml", load_from="./pg_backup")
    assert agent.last_load["success"]
    assert table_md5s(postgres18_server.url("from_dump")) == original


def test_recover_without_psql_gives_the_hint(pg_agent, postgres18_server, monkeypatch, tmp_path):
    assert pg_agent.save_agent("./pg_backup")["success"]
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("SNAPSTORE_PG_BIN", str(empty))
    name = postgres18_server.create_database()
    result = recover_database_only("./pg_backup", target=postgres18_server.url(name))
    assert result["success"] is False
    assert "psql not found" in result["error"] and "SNAPSTORE_PG_BIN" in result["error"]
    assert table_md5s(postgres18_server.url(name)) == {}


def test_recover_database_only_over_the_agent_takes_a_safety_snapshot(pg_agent, pg_sample_agent, monkeypatch):
    assert pg_agent.save_agent("./pg_backup")["success"]
    original = table_md5s(pg_sample_agent.url)
    _edit(pg_sample_agent)
    edited = table_md5s(pg_sample_agent.url)
    with monkeypatch.context() as m:
        m.delenv("SNAPSTORE_REPO", raising=False)  # the S3 run's repository would be known
        refused = recover_database_only("./pg_backup", target=pg_sample_agent.url)  # no repository known
    assert refused["success"] is False and "nothing was changed" in refused["error"]
    assert table_md5s(pg_sample_agent.url) == edited
    result = recover_database_only("./pg_backup", target=pg_agent)
    assert result["success"], result.get("error")
    assert result["safety_snapshot_id"] and table_md5s(pg_sample_agent.url) == original
