"""Backups of an agent: the folder-layout tree, the agent's own settings, incremental cost (each test
on both backends: ``repo_url`` is a local directory, then an S3 prefix)."""
from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path

import pytest

from snapstore.backup import CONFIG_PATH, DB_PATH, ENV_PATH, backup_agent
from snapstore.extract import write_file
from snapstore.manifest import resolve_snapshot
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent, mutate_agent
from snapstore.sources.agent import load_agent_source


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    return create_sample_agent(tmp_path_factory.mktemp("agent") / "a", scale=1, seed=5)


def table_digest(db_path) -> dict[str, str]:
    conn = sqlite3.connect(db_path)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                        "AND name NOT LIKE '%_fts%' ORDER BY name")]
    out = {}
    for name in names:
        h = hashlib.sha256()
        for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
            h.update(repr(row).encode())
        out[name] = h.hexdigest()
    conn.close()
    return out


def dump_db(repo, snap, out_path):
    with open(out_path, "wb") as out:
        write_file(repo, snap.file(DB_PATH), out)
    return out_path


def test_snapshot_layout_and_content(tmp_path, repo_url, agent, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-of-the-process-not-the-agent")
    monkeypatch.setenv("MIRIX_PROCESS_ONLY", "from-snapstores-environment")
    repo = Repository.init(repo_url)
    source = load_agent_source(agent.config_path)
    result = backup_agent(repo, source, include_logs=True, tags=["t1"])
    snap = resolve_snapshot(repo, "latest")
    assert snap.id == result.snapshot.id and snap.tags == ["t1"]
    paths = {f.path for f in snap.files}
    assert {DB_PATH, CONFIG_PATH, ENV_PATH, "logs/agent.log", "logs/security.log"} <= paths
    restored = dump_db(repo, snap, tmp_path / "restored.db")
    assert sqlite3.connect(restored).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert table_digest(restored) == table_digest(agent.db_path)
    buf = io.BytesIO()
    write_file(repo, snap.file(CONFIG_PATH), buf)
    assert buf.getvalue() == Path(agent.config_path).read_bytes()
    assert hashlib.md5(buf.getvalue()).digest() == snap.file(CONFIG_PATH).md5
    env = io.BytesIO()
    write_file(repo, snap.file(ENV_PATH), env)
    # the agent's settings file as it is (exports sanitise it), and nothing of this process's
    assert env.getvalue() == (Path(agent.config_path).parent / ".env").read_bytes()
    assert snap.sanitized == []


def test_logs_only_when_asked(repo_url, agent):
    repo = Repository.init(repo_url)
    backup_agent(repo, load_agent_source(agent.config_path))
    assert not [f for f in resolve_snapshot(repo, "latest").files if f.path.startswith("logs/")]


def test_incremental_costs(tmp_path, repo_url):
    info = create_sample_agent(tmp_path / "a", scale=1, seed=9)
    repo = Repository.init(repo_url)
    source = load_agent_source(info.config_path)
    first = backup_agent(repo, source)
    unchanged = backup_agent(repo, source)
    assert unchanged.added_chunks == 0
    assert unchanged.added_bytes < 64 * 1024
    assert unchanged.snapshot.parent == first.snapshot.id
    stats = mutate_agent(tmp_path / "a", fraction=0.01, seed=3)
    changed = backup_agent(repo, source)
    db_size = Path(info.db_path).stat().st_size
    assert 0 < changed.added_bytes < db_size / 4, "a 1% day must add far less than the database"
    assert stats.bytes_after >= stats.bytes_before * 0.99
    restored = dump_db(repo, resolve_snapshot(repo, "latest"), tmp_path / "r.db")
    assert table_digest(restored) == table_digest(info.db_path)
    # the older snapshot still reads back as it was
    old = dump_db(repo, resolve_snapshot(repo, first.snapshot.id), tmp_path / "old.db")
    assert sqlite3.connect(old).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert table_digest(old) != table_digest(restored)


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_unchanged_database_is_not_reread_but_any_commit_is_seen(tmp_path, repo_url, journal_mode):
    info = create_sample_agent(tmp_path / "a", scale=1, seed=12)
    db = Path(info.db_path)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={journal_mode}")
    repo = Repository.init(repo_url)
    source = load_agent_source(info.config_path)
    backup_agent(repo, source)
    same = backup_agent(repo, source)
    assert same.snapshot.summary["database_unchanged"] is True
    forced = backup_agent(repo, source, read_all=True)
    assert forced.snapshot.summary["database_unchanged"] is False
    assert forced.snapshot.file(DB_PATH).digest == same.snapshot.file(DB_PATH).digest
    # one small commit that keeps the file size: it must be captured, not skipped
    conn.execute("UPDATE block SET value = value || '!' WHERE rowid = (SELECT min(rowid) FROM block)")
    after = backup_agent(repo, source)
    assert after.snapshot.summary["database_unchanged"] is False
    restored = dump_db(repo, after.snapshot, tmp_path / "r.db")
    assert table_digest(restored) == table_digest(db)
    conn.close()


def test_repository_object_sees_packs_written_by_others(tmp_path, repo_url):
    """A long-lived Repository (an agent process) must not back up against a stale index."""
    info = create_sample_agent(tmp_path / "a", scale=1, seed=14)
    repo_a = Repository.init(repo_url)
    source = load_agent_source(info.config_path)
    backup_agent(repo_a, source)
    mutate_agent(tmp_path / "a", fraction=0.05, seed=1)
    backup_agent(Repository.open(repo_url), source)  # another writer
    mutate_agent(tmp_path / "a", fraction=0.05, seed=2)
    result = backup_agent(repo_a, source)
    restored = dump_db(repo_a, result.snapshot, tmp_path / "r.db")
    assert table_digest(restored) == table_digest(info.db_path)
