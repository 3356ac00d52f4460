"""Where an agent's parts are: SPEC.md §3's database lookup order."""
from __future__ import annotations

import pytest

from snapstore.errors import SourceError, UsageError
from snapstore.sources.agent import load_agent_source, locate_database, redact_url


def test_relative_sqlite_url_resolves_against_config_dir(tmp_path):
    cfg = tmp_path / "agent" / "mirix.yaml"
    cfg.parent.mkdir()
    cfg.write_text("agent_name: demo\ndatabase_url: sqlite:///sqlite.db\n")
    (tmp_path / "agent" / ".env").write_text("A=1\n")
    (tmp_path / "agent" / "logs").mkdir()
    src = load_agent_source(cfg)
    assert src.name == "demo" and src.sqlite_path == tmp_path / "agent" / "sqlite.db"
    assert src.env_file == tmp_path / "agent" / ".env" and src.log_dir == tmp_path / "agent" / "logs"


def test_lookup_order(tmp_path):
    env = {"MIRIX_PG_URI": "postgresql://u:p@h:5432/m", "MIRIX_DIR": str(tmp_path)}
    assert locate_database({"database_url": "postgresql://x@y/z"}, tmp_path, env) == "postgresql://x@y/z"
    assert locate_database({}, tmp_path, env) == env["MIRIX_PG_URI"]
    pg = locate_database({"pg_user": "me", "pg_password": "s3", "pg_db": "mirix"}, tmp_path, {})
    assert pg == "postgresql://me:s3@localhost:5432/mirix"
    assert locate_database({}, tmp_path, {"MIRIX_DIR": str(tmp_path)}) == f"sqlite:///{tmp_path}/sqlite.db"


def test_redact_url_hides_password():
    assert redact_url("postgresql://me:s3cret@h/db") == "postgresql://me:***@h/db"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


@pytest.mark.parametrize("text", ["a: [unclosed", "- just\n- a list\n"])
def test_bad_config_is_a_source_error(tmp_path, text):
    cfg = tmp_path / "mirix.yaml"
    cfg.write_text(text)
    with pytest.raises(SourceError, match="mirix.yaml"):
        load_agent_source(cfg)


def test_missing_config_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="cannot read"):
        load_agent_source(tmp_path / "absent.yaml")


def test_environment_file_is_the_agents_own(tmp_path, monkeypatch):
    """Beside the config, or --env-file; a bare database takes none from the current directory."""
    agent = tmp_path / "agent"
    agent.mkdir()
    cfg = agent / "mirix.yaml"
    cfg.write_text("agent_name: demo\ndatabase_url: sqlite:///sqlite.db\n")
    (agent / ".env").write_text("A=1\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / ".env").write_text("OTHER=1\n")
    other = tmp_path / "settings.env"
    other.write_text("B=2\n")
    monkeypatch.chdir(cwd)
    assert load_agent_source(cfg).env_file == agent / ".env"
    assert load_agent_source(cfg, env_file=other).env_file == other
    assert load_agent_source(db_path=agent / "sqlite.db").env_file is None
    assert load_agent_source(db_path=cwd / "x.db").env_file is None
    assert load_agent_source(db_path=cwd / "x.db", env_file=".env").env_file == cwd / ".env"
    with pytest.raises(UsageError, match="missing.env"):
        load_agent_source(db_path=cwd / "x.db", env_file=tmp_path / "missing.env")


def test_logs_are_the_agents_own(tmp_path, monkeypatch):
    """A bare database's logs are beside it (or beside the config found next to it), never the
    current directory's ``logs/``; a PostgreSQL URL alone has none."""
    agent = tmp_path / "agent"
    (agent / "logs").mkdir(parents=True)
    cwd = tmp_path / "cwd"
    (cwd / "logs").mkdir(parents=True)
    lone = tmp_path / "lone"
    lone.mkdir()
    monkeypatch.chdir(cwd)
    assert load_agent_source(db_path=agent / "sqlite.db").log_dir == agent / "logs"
    assert load_agent_source(db_path=lone / "x.db").log_dir is None
    assert load_agent_source(db_path="postgresql://u@localhost:5/db").log_dir is None
    cfg = agent / "mirix.yaml"
    cfg.write_text("agent_name: demo\ndatabase_url: sqlite:///sqlite.db\n")
    assert load_agent_source(cfg).log_dir == agent / "logs"
