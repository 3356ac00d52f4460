"""AgentWrapper: where its repository is, and load_agent's components in detail."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from api_helpers import db_execute, db_rows, default_repository, fts_consistent
from snapstore import AgentWrapper
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.sanitize import MARKER

DB = Path("configs/sqlite.db")
CONFIG = Path("configs/mirix.yaml")


def edit_config(**changes) -> None:
    doc = yaml.safe_load(CONFIG.read_text())
    doc.update(changes)
    CONFIG.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.mark.local_only("the order in which a directory location is resolved")
def test_repository_location_order(home, monkeypatch):
    agent = AgentWrapper(CONFIG)
    assert agent.repository_path == CONFIG.resolve().parent / ".snapstore"
    monkeypatch.setenv("SNAPSTORE_REPO", str(home / "env_repo"))
    assert AgentWrapper(CONFIG).repository_path == home / "env_repo"
    edit_config(snapstore={"repository": "../config_repo"})
    agent = AgentWrapper(CONFIG)
    assert agent.repository_path.resolve() == home / "config_repo"
    result = agent.save_agent("./b")
    assert result["success"] and Path(result["repository"]).resolve() == home / "config_repo"
    assert (home / "config_repo" / "config").is_file() and not (home / "env_repo").exists()


def test_saves_share_one_repository_and_deduplicate(home):
    """In the S3 run the repository is an s3: URL in SNAPSTORE_REPO, created on the first save."""
    agent = AgentWrapper(CONFIG)
    assert str(agent.repository_path) == default_repository()
    first = agent.save_agent("./b1")
    second = agent.save_agent("./b2")
    assert first["success"] and second["success"] and first["repository"] == default_repository()
    assert second["added_bytes"] < first["added_bytes"] / 20
    snaps = list_snapshots(agent.repository)
    assert [s.id for s in snaps] == [first["snapshot_id"], second["snapshot_id"]]
    assert snaps[1].parent == snaps[0].id and "save_agent" in snaps[1].tags


def test_load_selected_memory_types_only(home):
    agent = AgentWrapper(CONFIG)
    assert agent.save_agent("./b")["success"]
    episodic = db_rows(DB, "episodic_memory")
    db_execute(DB, "DELETE FROM episodic_memory", "DELETE FROM semantic_memory")
    result = agent.load_agent("./b", restore_components={"memories": ["episodic"]})
    assert result["success"], result.get("error")
    assert result["memory_count"] == len(episodic) and result["conversation_count"] == 0
    assert db_rows(DB, "episodic_memory") == episodic and db_rows(DB, "semantic_memory") == []
    assert fts_consistent(DB, "episodic_memory")


def test_load_logs_goes_beside_the_config(home):
    agent = AgentWrapper(CONFIG)
    assert agent.save_agent("./b", include_logs=True)["success"]
    live_log = Path("configs/logs/agent.log").read_text()
    Path("configs/logs/agent.log").write_text("rotated\n")
    result = agent.load_agent("./b", restore_components={"logs": True})
    assert result["success"], result.get("error")
    [restored] = [Path(p) for p in result["restored_logs"] if p.endswith("agent.log")]
    assert restored.read_text() == live_log and restored.parent.parent.parent == CONFIG.resolve().parent
    assert Path("configs/logs/agent.log").read_text() == "rotated\n"  # the live log is not overwritten


def test_load_config_merges_and_keeps_local_settings(home):
    agent = AgentWrapper(CONFIG)
    assert agent.save_agent("./b")["success"]  # its config: api_key redacted
    secret = yaml.safe_load(CONFIG.read_text())["llm_config"]["api_key"]
    assert yaml.safe_load(Path("b/config/mirix.yaml").read_text())["llm_config"]["api_key"] == MARKER
    edit_config(model_name="changed-model", database_url="sqlite:///sqlite.db", timezone="Europe/Paris")
    result = agent.load_agent("./b", restore_components={"config": True})
    assert result["success"], result.get("error")
    doc = yaml.safe_load(CONFIG.read_text())
    assert doc["model_name"] == "gemini-2.0-flash" and doc["timezone"] == "America/New_York"  # the backup's
    assert doc["llm_config"]["api_key"] == secret                                            # not the marker
    assert doc["database_url"] == "sqlite:///sqlite.db"
    assert result["config"]["placeholders"] == []
    # the safety snapshot holds the config as it was before
    snap = [s for s in list_snapshots(agent.repository) if s.id == result["safety_snapshot_id"]][0]
    assert "pre-restore" in snap.tags and "config/mirix.yaml" in [f.path for f in snap.files]


def test_load_a_folder_written_by_mirix(home):
    agent = AgentWrapper(CONFIG)
    folder = Path("mirix_save")
    folder.mkdir()
    shutil.copy(DB, folder / "sqlite.db")
    (folder / "agent_config.json").write_text("{}")
    shutil.copy(CONFIG, folder / "mirix_config.yaml")
    messages = db_rows(DB, "messages")
    db_execute(DB, "DELETE FROM messages")
    result = agent.load_agent(folder)
    assert result["success"], result.get("error")
    assert db_rows(DB, "messages") == messages and result["conversation_count"] == len(messages)


def test_load_from_init_creates_the_database_of_a_new_agent(home, tmp_path):
    agent = AgentWrapper(CONFIG)
    assert agent.save_agent("./b")["success"]
    new = tmp_path / "fresh"
    new.mkdir()
    (new / "mirix.yaml").write_text("agent_name: fresh\nmodel_name: m\ndatabase_url: sqlite:///data/agent.db\n")
    (new / "data").mkdir()
    fresh = AgentWrapper(new / "mirix.yaml", load_from="./b")
    assert fresh.db_path == (new / "data" / "agent.db").resolve()
    assert db_rows(fresh.db_path, "messages") == db_rows(DB, "messages")
    assert fresh.last_load["safety_snapshot_id"] is None  # nothing was there to protect


def test_latest_snapshot_is_this_agents_never_anothers(home):
    """The selection rule of the CLI: an AgentWrapper's latest is its own agent's newest, even
    when another agent's snapshot in the same repository is newer."""
    from snapstore.backup import backup_agent
    from snapstore.sources.agent import load_agent_source

    agent = AgentWrapper(CONFIG)
    saved = agent.save_agent("./b")
    assert saved["success"]
    other_db = home / "elsewhere" / "sqlite.db"
    other_db.parent.mkdir()
    shutil.copyfile(DB, other_db)
    other = backup_agent(agent.repository, load_agent_source(db_path=other_db)).snapshot
    assert other.agent == "elsewhere" and list_snapshots(agent.repository)[-1].id == other.id
    assert agent.latest_snapshot().id == saved["snapshot_id"]
    assert [s.id for s in agent.snapshots()] == [saved["snapshot_id"]]


def test_load_undo_is_the_same_pasteable_command_as_the_clis(home):
    import shlex
    import subprocess

    from helpers import SNAPSTORE, cli_env

    agent = AgentWrapper(CONFIG)
    assert agent.save_agent("./b")["success"]
    db_execute(DB, "DELETE FROM episodic_memory")
    emptied = db_rows(DB, "episodic_memory")
    result = agent.load_agent("./b")
    assert result["success"] and db_rows(DB, "episodic_memory") != emptied
    words = shlex.split(result["undo"])
    assert words[:2] == ["snapstore", "--repo"]
    assert Repository.open(words[2]).config.repo_id == agent.repository.config.repo_id
    assert words[-1] == str(DB.absolute())
    done = subprocess.run(SNAPSTORE + words[1:], cwd="/", env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert db_rows(DB, "episodic_memory") == emptied


def test_a_set_passphrase_makes_the_new_repository_encrypted(home):
    """The "encrypted" run of this suite really runs on format v2; the others on v1 (nothing leaks)."""
    agent = AgentWrapper(CONFIG)
    assert agent.save_agent("./b")["success"]
    repo = agent.repository
    assert repo.config.encrypted == ("SNAPSTORE_PASSWORD" in os.environ)
    assert repo.config.version == (2 if repo.config.encrypted else 1)
