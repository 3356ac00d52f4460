"""Failures a user can cause: ``success`` False with a clear one-line ``error``, never an exception.

Wrong paths, existing or unwritable destinations, a missing database, corrupt or
tampered folders, a newer folder format, bad arguments -- and in every case the live
agent is left exactly as it was.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from api_helpers import db_rows
from snapstore import AgentLoadError, AgentWrapper, InvalidMigrationPackage, import_from_migration, \
    recover_database_only
from snapstore.errors import SourceError

DB = Path("configs/sqlite.db")


@pytest.fixture
def agent(home) -> AgentWrapper:
    return AgentWrapper("./configs/mirix.yaml")


@pytest.fixture
def backup(agent) -> Path:
    result = agent.save_agent("./my_backup")
    assert result["success"], result.get("error")
    return Path("my_backup")


def failed(result: dict, *needles: str) -> str:
    assert result["success"] is False
    error = result["error"]
    assert isinstance(error, str) and error and "\n" not in error and "Traceback" not in error
    for needle in needles:
        assert needle in error, error
    return error


def live_state() -> dict:
    return {t: db_rows(DB, t) for t in ("episodic_memory", "semantic_memory", "messages", "agents")}


# -- save_agent ----------------------------------------------------------------------------------

def test_save_into_existing_non_empty_folder(agent, backup):
    before = sorted(p.name for p in backup.rglob("*"))
    failed(agent.save_agent("./my_backup"), "my_backup", "already exists")
    assert sorted(p.name for p in backup.rglob("*")) == before


def test_save_into_an_existing_empty_directory_works(agent):
    Path("empty").mkdir()
    assert agent.save_agent("./empty")["success"]


def test_save_to_a_path_under_a_file(agent):
    Path("afile").write_text("x")
    result = agent.save_agent("./afile/backup")
    failed(result, "afile")
    assert result["snapshot_id"] is None  # refused before any snapshot was taken


def test_save_to_a_file_path(agent):
    Path("afile").write_text("x")
    failed(agent.save_agent("./afile"), "afile", "already exists")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_save_to_unwritable_directory(agent):
    Path("ro").mkdir(mode=0o500)
    failed(agent.save_agent("./ro/backup"), "ro")


def test_save_when_database_is_missing(agent):
    DB.unlink()
    result = agent.save_agent("./my_backup")
    failed(result, "sqlite.db", "does not exist")
    assert not Path("my_backup").exists()


def test_save_when_database_is_not_sqlite(agent):
    DB.write_bytes(b"this is not a database" * 300)
    failed(agent.save_agent("./my_backup"))
    assert not Path("my_backup").exists()


def test_save_with_an_unreachable_postgres_agent_is_a_clear_failure(home):
    Path("pg.yaml").write_text("agent_name: pg\nmodel_name: m\ndatabase_url: postgresql://u:secret@localhost:1/mirix\n")
    error = failed(AgentWrapper("pg.yaml").save_agent("./pg_backup"), "cannot connect to postgresql://u:***@localhost:1/mirix",
                   "connection refused")
    assert "secret" not in error and not Path("pg_backup").exists()


def test_verification_not_asked_for(agent):
    result = agent.save_agent("./b", verify_integrity=False)
    assert result["success"] and result["verification_passed"] is None


def test_include_config_false_still_verifies(agent):
    result = agent.save_agent("./no_config", include_config=False, verify_after_backup=True)
    assert result["success"], result.get("error")
    assert result["verification_passed"] is True
    assert not Path("no_config/config").exists()


# -- AgentWrapper --------------------------------------------------------------------------------

def test_constructor_with_missing_config(home):
    with pytest.raises(SourceError, match="nowhere.yaml"):
        AgentWrapper("./nowhere.yaml")


def test_constructor_load_from_a_missing_folder(home):
    before = live_state()
    with pytest.raises(AgentLoadError, match="does not exist"):
        AgentWrapper("./configs/mirix.yaml", load_from="./no_such_backup")
    assert live_state() == before


# -- load_agent --------------------------------------------------------------------------------------

def test_load_from_wrong_path(agent):
    before = live_state()
    failed(agent.load_agent("./no_such_backup"), "no_such_backup", "does not exist")
    assert live_state() == before


def test_load_from_a_file(agent, backup):
    failed(agent.load_agent("./my_backup/metadata.json"), "not a directory")


def test_load_from_a_folder_that_is_not_a_backup(agent):
    Path("junk").mkdir()
    (Path("junk") / "notes.txt").write_text("hello")
    failed(agent.load_agent("./junk"), "junk", "not a backup folder")


def test_load_from_a_tampered_folder(agent, backup):
    with open(backup / "database" / "sqlite.db", "r+b") as f:
        f.seek(8192)
        f.write(b"\xff" * 16)
    db_rows_before = live_state()
    failed(agent.load_agent("./my_backup"), "checksum mismatch", "database/sqlite.db")
    assert live_state() == db_rows_before


def test_load_from_a_folder_missing_a_file(agent, backup):
    (backup / "memories" / "episodic_memory.json").unlink()
    failed(agent.load_agent("./my_backup"), "missing", "episodic_memory.json")


def test_load_from_a_folder_with_broken_metadata(agent, backup):
    (backup / "metadata.json").write_text("{not json")
    failed(agent.load_agent("./my_backup"), "metadata.json")


def test_load_from_a_newer_folder_format(agent, backup):
    meta = json.loads((backup / "metadata.json").read_text())
    meta["backup_info"]["version"] = "2.0.0"
    (backup / "metadata.json").write_text(json.dumps(meta))
    failed(agent.load_agent("./my_backup"), "2.0.0", "newer")


def test_load_with_unknown_component(agent, backup):
    failed(agent.load_agent("./my_backup", restore_components={"memories": True, "screenshots": True}),
           "screenshots")


def test_load_selecting_nothing(agent, backup):
    failed(agent.load_agent("./my_backup", restore_components={"memories": False}), "nothing")


def test_load_config_from_a_backup_without_config(agent):
    agent.save_agent("./no_config", include_config=False)
    failed(agent.load_agent("./no_config", restore_components={"config": True}), "config/mirix.yaml")


def test_selective_load_when_database_is_missing(agent, backup):
    DB.unlink()
    failed(agent.load_agent("./my_backup", restore_components={"memories": True}), "existing database")


def test_whole_load_recreates_a_missing_database(agent, backup):
    DB.unlink()
    result = agent.load_agent("./my_backup")
    assert result["success"], result.get("error")
    assert result["safety_snapshot_id"] is None and DB.is_file()


# -- restore_memory_type -----------------------------------------------------------------------------

def test_restore_memory_type_with_bad_input(agent, backup):
    doc = json.loads((backup / "memories" / "semantic_memory.json").read_text())
    before = live_state()
    failed(agent.restore_memory_type("dreams", doc), "dreams")
    failed(agent.restore_memory_type("episodic", doc), "semantic", "not episodic")
    failed(agent.restore_memory_type("semantic", {"rows": "nope"}), "rows")
    truncated = dict(doc, rows=doc["rows"][:-1])
    failed(agent.restore_memory_type("semantic", truncated), "incomplete")
    bad_row = dict(doc, rows=doc["rows"] + [{"$rowid": doc["rows"][0]["$rowid"], "id": "dup"}], row_count=None)
    bad_row.pop("row_count")
    failed(agent.restore_memory_type("semantic", bad_row), "database error")  # duplicate rowid: rolled back
    assert live_state() == before


def test_restore_memory_type_when_database_is_missing(agent, backup):
    doc = json.loads((backup / "memories" / "core_memory.json").read_text())
    DB.unlink()
    failed(agent.restore_memory_type("core", doc), "does not exist")


# -- helpers ------------------------------------------------------------------------------------------

def test_recover_database_only_failures(agent, backup):
    failed(recover_database_only("./no_such_backup"), "does not exist")
    (backup / "database" / "mirix_dump.sql").unlink()
    failed(recover_database_only("./my_backup"), "missing", "mirix_dump.sql")
    Path("plain").mkdir()
    failed(recover_database_only("./plain"), "no database dump")
    failed(recover_database_only("./plain", target="./configs/nowhere.yaml"), "nowhere.yaml")


def test_recover_database_only_with_a_dump_that_does_not_load(agent, tmp_path):
    folder = Path("broken")
    (folder / "database").mkdir(parents=True)
    (folder / "database" / "mirix_dump.sql").write_text("CREATE TABLE t(a);\nTHIS IS NOT SQL;\n")
    before = live_state()
    failed(recover_database_only("./broken"), "does not load")
    assert live_state() == before


def test_import_from_migration_rejects_a_plain_backup(home, backup):
    with pytest.raises(InvalidMigrationPackage, match="MIGRATION_GUIDE.json") as info:
        import_from_migration("./my_backup", "./configs/mirix.yaml")
    assert isinstance(info.value, ValueError)  # what the reference raises
