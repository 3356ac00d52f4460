"""The sample agent on PostgreSQL 18 with pgvector (Mirix's schema): snapshot -> export ->
``psql -f mirix_dump.sql`` into a new database gives every table equal (md5 of rows), the
extensions, and memories JSON whose embeddings are 4096-number arrays equal to the server's."""
from __future__ import annotations

import json
import subprocess

import pytest

from pg_agent import table_md5s
from snapstore.backup import backup_agent
from snapstore.export import export_snapshot
from snapstore.folder.verify import verify_backup
from snapstore.repository import Repository
from snapstore.sources.agent import load_agent_source

pytestmark = pytest.mark.postgres


def test_mirix_agent_snapshot_exports_a_dump_psql_loads_equal(pg_sample_agent, tmp_path, monkeypatch, repo_url):
    server = pg_sample_agent.server
    monkeypatch.setenv("SNAPSTORE_PG_BIN", str(server.bindir))  # pg_dump 18 for the 18 server
    repo = Repository.init(repo_url)
    snap = backup_agent(repo, load_agent_source(db_path=pg_sample_agent.url)).snapshot
    export_snapshot(repo, snap.id, tmp_path / "folder")
    target = server.create_database()
    done = subprocess.run([server.bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.url(target),
                           "-f", str(tmp_path / "folder" / "database" / "mirix_dump.sql")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert table_md5s(server.dsn(target)) == table_md5s(pg_sample_agent.url)
    with pg_sample_agent.connect() as conn:
        extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        indexes = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1").fetchall()
        first = conn.execute("SELECT id, summary_embedding::text FROM episodic_memory "
                             "WHERE summary_embedding IS NOT NULL ORDER BY id LIMIT 1").fetchone()
    import psycopg

    with psycopg.connect(server.dsn(target)) as conn:
        assert {r[0] for r in conn.execute("SELECT extname FROM pg_extension")} == extensions >= {"vector"}
        assert conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1").fetchall() \
            == indexes
    episodic = json.loads((tmp_path / "folder" / "memories" / "episodic_memory.json").read_text())
    row = next(r for r in episodic["rows"] if r["id"] == first[0])
    assert isinstance(row["summary_embedding"], list) and len(row["summary_embedding"]) == 4096
    assert row["summary_embedding"] == json.loads(first[1])
    result = verify_backup(tmp_path / "folder", pg_url=server.url("postgres"))
    assert result["valid"], result["errors"]


def test_redact_vault_rewrites_the_vault_rows_of_dump_and_memories(pg_sample_agent, tmp_path, monkeypatch):
    """``--redact-vault medium`` on PostgreSQL: the planted high and medium secrets are in no
    byte of the folder; the low one is; the dump loads with psql and every other column of the
    vault (and every other table) equals the agent's."""
    import secrets

    import psycopg

    from snapstore.sanitize import MARKER

    server = pg_sample_agent.server
    monkeypatch.setenv("SNAPSTORE_PG_BIN", str(server.bindir))
    planted = {level: f"vault-{level}-PLANTED-{secrets.token_hex(8)}" for level in ("high", "medium", "low")}
    with pg_sample_agent.connect() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM knowledge_vault ORDER BY id LIMIT 3")]
        for row_id, (level, value) in zip(ids, planted.items()):
            conn.execute("UPDATE knowledge_vault SET sensitivity = %s, secret_value = %s WHERE id = %s",
                         (level, value, row_id))
        conn.commit()
        levels = dict(conn.execute("SELECT id, sensitivity FROM knowledge_vault").fetchall())
    repo = Repository.init(tmp_path / "repo")
    snap = backup_agent(repo, load_agent_source(db_path=pg_sample_agent.url)).snapshot
    result = export_snapshot(repo, snap.id, tmp_path / "folder", redact_vault="medium")
    files = {p.relative_to(tmp_path / "folder").as_posix(): p.read_bytes()
             for p in (tmp_path / "folder").rglob("*") if p.is_file()}
    for level in ("high", "medium"):
        assert [rel for rel, data in files.items() if planted[level].encode() in data] == []
    assert sorted(rel for rel, data in files.items() if planted["low"].encode() in data) == [
        "database/mirix_dump.sql", "memories/knowledge_vault.json"]
    redacted = sum(1 for s in levels.values() if s != "low")
    assert (result.vault_redaction.redacted, result.vault_redaction.kept) == (redacted, len(levels) - redacted)

    target = server.create_database()
    done = subprocess.run([server.bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.url(target),
                           "-f", str(tmp_path / "folder" / "database" / "mirix_dump.sql")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded, original = table_md5s(server.dsn(target)), table_md5s(pg_sample_agent.url)
    assert {t: v for t, v in loaded.items() if t != "knowledge_vault"} == \
           {t: v for t, v in original.items() if t != "knowledge_vault"}
    query = "SELECT id, sensitivity, secret_value, caption FROM knowledge_vault ORDER BY id"
    with psycopg.connect(server.dsn(target)) as conn:
        rows = conn.execute(query).fetchall()
    with pg_sample_agent.connect() as conn:
        before = conn.execute(query).fetchall()
    assert [(i, s, c) for i, s, _, c in rows] == [(i, s, c) for i, s, _, c in before]
    assert all((v == MARKER) == (s != "low") for _, s, v, _ in rows)
    assert all(v == b for (_, s, v, _), (_, _, b, _) in zip(rows, before) if s == "low")
    doc = json.loads(files["memories/knowledge_vault.json"])
    assert {r["id"]: r["secret_value"] for r in doc["rows"]} == {i: v for i, _, v, _ in rows}
    check = verify_backup(tmp_path / "folder", pg_url=server.url("postgres"))
    assert check["valid"], check["errors"]
