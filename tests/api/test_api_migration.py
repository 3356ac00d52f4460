"""export_for_migration writes true system facts; import_from_migration checks the result."""
from __future__ import annotations

import json
import platform
import shutil
import socket
from pathlib import Path

import pytest

import snapstore
from api_helpers import db_count, db_execute
from snapstore import (AgentWrapper, export_for_migration, get_database_type, get_mirix_version,
                       import_from_migration, run_post_migration_tests, verify_migration_package)

MEMORY_TABLES = ("block", "episodic_memory", "semantic_memory", "procedural_memory", "resource_memory",
                 "knowledge_vault")


def new_system(root: Path, extra: str = "") -> Path:
    (root / "configs").mkdir(parents=True)
    config = root / "configs" / "mirix.yaml"
    config.write_text("agent_name: mirix\nmodel_name: gemini-2.0-flash\ndatabase_url: sqlite:///sqlite.db\n" + extra)
    return config


def test_migration_guide_holds_true_system_facts(home):
    config = Path("configs/mirix.yaml")
    config.write_text(config.read_text() + "mirix_version: 0.1.5\n")
    agent = AgentWrapper(config)
    result = export_for_migration(agent, "./migration_export")
    assert result["success"], result.get("error")
    guide = json.loads(Path("migration_export/MIGRATION_GUIDE.json").read_text())
    system = guide["source_system"]
    assert system["platform"] == platform.platform()
    assert system["hostname"] == socket.gethostname()
    assert system["python"] == platform.python_version()
    assert system["snapstore_version"] == snapstore.__version__
    assert guide["database_type"] == "sqlite" == get_database_type(agent)
    assert guide["mirix_version"] == "0.1.5" == get_mirix_version(agent)
    assert guide["memory_counts"]["episodic"] == db_count(Path("configs/sqlite.db"), "episodic_memory")
    assert "llm_config.api_key" in guide["sanitized_settings"]
    assert len(guide["migration_steps"]) == 5 and guide["notes"]
    # logs and config are in the package, secrets are not
    assert Path("migration_export/logs/agent.log").is_file()
    assert "sk-sample" not in Path("migration_export/config/mirix.yaml").read_text()
    assert verify_migration_package("./migration_export")


def test_mirix_version_unknown_without_setting(home):
    agent = AgentWrapper("./configs/mirix.yaml")
    assert get_mirix_version(agent) == "unknown"
    assert export_for_migration("./configs/mirix.yaml", "./m")["success"]  # a config path works too
    assert json.loads(Path("m/MIGRATION_GUIDE.json").read_text())["mirix_version"] == "unknown"


def test_import_on_a_new_system_with_an_existing_agent(home, tmp_path):
    source_db = Path("configs/sqlite.db")
    assert export_for_migration(AgentWrapper("./configs/mirix.yaml"), "./migration_export")["success"]
    counts = {t: db_count(source_db, t) for t in MEMORY_TABLES + ("messages",)}
    # the new machine already runs an agent with other data: the import replaces its database
    target_dir = tmp_path / "target"
    shutil.copytree("configs", target_dir / "configs", ignore=shutil.ignore_patterns(".snapstore"))
    target_db = target_dir / "configs" / "sqlite.db"
    db_execute(target_db, "DELETE FROM episodic_memory", "DELETE FROM messages")
    imported = import_from_migration("./migration_export", target_dir / "configs" / "mirix.yaml")
    verification = imported["verification"]
    assert verification["all_passed"], verification["warnings"]
    assert verification["checks"] == {"database": True, "memories_readable": True, "search_index": True,
                                      "memory_counts": True, "conversation_count": True}
    assert {t: db_count(target_db, t) for t in counts} == counts
    agent = imported["agent"]
    assert agent.last_load["safety_snapshot_id"]  # the replaced data can be brought back


def test_post_migration_tests_find_missing_rows(home, tmp_path):
    assert export_for_migration(AgentWrapper("./configs/mirix.yaml"), "./migration_export")["success"]
    config = new_system(tmp_path / "new")
    imported = import_from_migration("./migration_export", config)
    db = config.parent / "sqlite.db"
    db_execute(db, "DELETE FROM semantic_memory WHERE rowid IN (SELECT rowid FROM semantic_memory LIMIT 2)",
               "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages LIMIT 1)")
    result = run_post_migration_tests(imported["agent"])
    assert result["all_passed"] is False
    assert result["checks"]["memory_counts"] is False and result["checks"]["conversation_count"] is False
    assert any("semantic" in w for w in result["warnings"])
    assert any("conversation count" in w for w in result["warnings"])


def test_post_migration_tests_find_unreadable_memories_and_placeholders(home, tmp_path):
    assert export_for_migration(AgentWrapper("./configs/mirix.yaml"), "./migration_export")["success"]
    config = new_system(tmp_path / "new", "llm_config:\n  api_key: '***REDACTED***'\n")
    imported = import_from_migration("./migration_export", config)
    assert imported["verification"]["all_passed"]
    assert any("llm_config.api_key" in w for w in imported["verification"]["warnings"])  # advisory only
    db_execute(config.parent / "sqlite.db",
               "UPDATE episodic_memory SET metadata_ = '{broken' WHERE rowid = (SELECT min(rowid) FROM episodic_memory)")
    result = run_post_migration_tests(imported["agent"], "./migration_export")
    assert result["checks"]["memories_readable"] is False
    assert any("metadata_" in w for w in result["warnings"])


def test_import_refuses_a_damaged_package(home, tmp_path):
    assert export_for_migration(AgentWrapper("./configs/mirix.yaml"), "./migration_export")["success"]
    with open("migration_export/memories/episodic_memory.json", "ab") as f:
        f.write(b" ")
    assert not verify_migration_package("./migration_export")
    config = new_system(tmp_path / "new")
    with pytest.raises(ValueError, match="Invalid migration package"):
        import_from_migration("./migration_export", config)
    assert not (config.parent / "sqlite.db").exists()
