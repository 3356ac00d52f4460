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
