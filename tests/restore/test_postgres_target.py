"""restore SNAPSHOT --to postgresql://…: SQLite and PostgreSQL snapshots into PostgreSQL (whole into
a new or empty database, selective over an existing agent after its safety snapshot), PostgreSQL
snapshots into SQLite, and every prerequisite refused before any change."""
from __future__ import annotations

import json

import psycopg
import pytest
from backends import BACKENDS, RepoObjects, repo_location
from helpers import assert_one_line_error, backed_up_agent, cli_env, ok, run_cli
from pg_agent import assert_same_memories, free_port, table_md5s

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module", params=BACKENDS)
def sqlite_backup(tmp_path_factory, request):
    """(agent, repo): the scale-1 sample agent (seed 0, as pg_sample_agent) backed up once, into a
    local and an S3 repository."""
    root = tmp_path_factory.mktemp("pg-restore")
    return backed_up_agent(root, scale=1, seed=0, repo=repo_location(request, request.param, root / "repo"))


@pytest.fixture
def pg_env(postgres18_server):
    """The CLI's environment with PostgreSQL 18's own client tools (for capture's pg_dump)."""
    return cli_env(SNAPSTORE_PG_BIN=str(postgres18_server.bindir))


def _databases(server) -> set[str]:
    with psycopg.connect(server.dsn("postgres")) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def _edit(agent) -> None:
    """A day of changes: episodic rows deleted and added, semantic and messages edited."""
    with agent.connect() as conn:
        conn.execute("DELETE FROM episodic_memory WHERE id IN (SELECT id FROM episodic_memory ORDER BY id LIMIT 3)")
        conn.execute("UPDATE semantic_memory SET summary = summary || ' (edited)' "
                     "WHERE id IN (SELECT id FROM semantic_memory ORDER BY id LIMIT 2)")
        conn.execute("INSERT INTO episodic_memory SELECT (jsonb_populate_record(NULL::episodic_memory, "
                     "to_jsonb(e) || '{\"id\": \"ep_mem-extra\"}')).* FROM episodic_memory e LIMIT 1")
        conn.execute("UPDATE messages SET text = 'edited' WHERE id = (SELECT min(id) FROM messages)")


def test_whole_restore_creates_the_database_equal_to_the_loaded_agent(sqlite_backup, postgres18_server,
                                                                      pg_sample_template):
    _, repo = sqlite_backup
    url = postgres18_server.url("restored_new")
    postgres18_server.drop_database("restored_new")
    out = ok(run_cli("restore", "latest", "--to", url, "--json", repo=repo))
    doc = json.loads(out.stdout)
    assert doc["target"] == url and doc["tables"]["episodic_memory"] == {"deleted": 0, "inserted": 42}
    assert any("episodic_memory_fts" in n for n in doc["not_carried"])  # listed, not dropped silently
    template, _ = pg_sample_template
    assert table_md5s(url) == table_md5s(postgres18_server.url(template))


def test_whole_restore_into_an_existing_empty_database(sqlite_backup, postgres18_server):
    _, repo = sqlite_backup
    name = postgres18_server.create_database()
    out = ok(run_cli("restore", "latest", "--to", postgres18_server.url(name), repo=repo))
    assert "restored database of snapshot" in out.stdout
    with psycopg.connect(postgres18_server.dsn(name)) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 300
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = "
                            "'ix_episodic_memory_combined_fts'").fetchone()[0] == 1


def test_dry_run_of_a_whole_restore_changes_nothing(sqlite_backup, postgres18_server):
    _, repo = sqlite_backup
    name = postgres18_server.create_database()
    out = ok(run_cli("restore", "latest", "--to", postgres18_server.url(name), "--dry-run", "--json", repo=repo))
    assert json.loads(out.stdout)["tables"]["messages"]["inserted"] == 300
    assert table_md5s(postgres18_server.url(name)) == {}
    missing = "never_created_" + name
    ok(run_cli("restore", "latest", "--to", postgres18_server.url(missing), "--dry-run", repo=repo))
    assert missing not in _databases(postgres18_server)


def test_selective_dry_run_counts_changed_rows_and_changes_nothing(sqlite_backup, pg_sample_agent):
    _, repo = sqlite_backup
    _edit(pg_sample_agent)
    before = table_md5s(pg_sample_agent.url)
    out = ok(run_cli("restore", "latest", "--to", pg_sample_agent.url, "--memory-type", "episodic,semantic",
                     "--dry-run", "--json", repo=repo))
    tables = json.loads(out.stdout)["tables"]
    assert tables == {"episodic_memory": {"deleted": 1, "inserted": 3},
                      "semantic_memory": {"deleted": 2, "inserted": 2}}
    assert table_md5s(pg_sample_agent.url) == before


def _restore_one_part(repo, agent, env, *args: str) -> tuple[dict, dict, dict]:
    """Edit the agent, restore one part of the snapshot over it: (result, original md5s, edited md5s)."""
    original = table_md5s(agent.url)
    _edit(agent)
    edited = table_md5s(agent.url)
    out = ok(run_cli("restore", "latest", "--to", agent.url, *args, "--json", repo=repo, env=env))
    return json.loads(out.stdout), original, edited


def _only_changed(agent, table: str, original: dict, edited: dict) -> None:
    """``table`` is back to the original; every other table still holds its edits."""
    after = table_md5s(agent.url)
    assert after[table] == original[table]
    assert {t: v for t, v in after.items() if t != table} == {t: v for t, v in edited.items() if t != table}


def test_selective_restore_touches_only_the_chosen_memory_type_and_can_be_undone(
        sqlite_backup, pg_sample_agent, pg_env):
    _, repo = sqlite_backup
    doc, original, edited = _restore_one_part(repo, pg_sample_agent, pg_env, "--memory-type", "episodic")
    assert doc["tables"] == {"episodic_memory": {"deleted": 1, "inserted": 3}} and doc["safety_snapshot_id"]
    _only_changed(pg_sample_agent, "episodic_memory", original, edited)  # semantic, messages: still edited
    # the safety snapshot is a PostgreSQL snapshot of the target: restoring it undoes the restore
    ok(run_cli("restore", doc["safety_snapshot_id"], "--to", pg_sample_agent.url, "--memory-type", "episodic",
               repo=repo, env=pg_env))
    assert table_md5s(pg_sample_agent.url) == edited


def test_whole_restore_over_an_existing_agent_replaces_every_row(sqlite_backup, pg_sample_agent, pg_env):
    _, repo = sqlite_backup
    original = table_md5s(pg_sample_agent.url)
    _edit(pg_sample_agent)
    out = ok(run_cli("restore", "latest", "--to", pg_sample_agent.url, repo=repo, env=pg_env))
    assert "to undo" in out.stdout
    assert table_md5s(pg_sample_agent.url) == original


def test_postgres_snapshot_into_a_new_database_every_table_equal(pg_sample_agent, postgres18_server, pg_env,
                                                                 repo_url):
    repo = repo_url
    ok(run_cli("init", repo=repo))
    with pg_sample_agent.connect() as conn:  # a sequence and a table outside public the restore must carry
        conn.execute("CREATE SEQUENCE step_seq START 7")
        conn.execute("SELECT nextval('step_seq'), nextval('step_seq')")
        conn.execute("CREATE SCHEMA extra")
        conn.execute("CREATE TABLE extra.notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO extra.notes VALUES (1, 'kept')")
    ok(run_cli("backup", "--db", pg_sample_agent.url, repo=repo, env=pg_env))
    url = postgres18_server.url("from_pg_snapshot")
    postgres18_server.drop_database("from_pg_snapshot")
    ok(run_cli("restore", "latest", "--to", url, repo=repo, env=pg_env))
    assert table_md5s(url) == table_md5s(pg_sample_agent.url)
    assert table_md5s(url, "extra") == table_md5s(pg_sample_agent.url, "extra")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT nextval('step_seq')").fetchone()[0] == 9
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    with pg_sample_agent.connect() as conn:
        assert indexes == {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    # over the existing agent, row by row: public's tables; the other schema's is listed, not dropped silently
    out = ok(run_cli("restore", "latest", "--to", url, "--dry-run", "--json", repo=repo, env=pg_env))
    assert json.loads(out.stdout)["not_carried"] == [
        "table extra.notes (outside schema public: restore into a new database to have it)"]


def test_postgres_snapshot_into_sqlite_gives_equal_memories(pg_sample_agent, pg_env, tmp_path, repo_url):
    repo = repo_url
    ok(run_cli("init", repo=repo))
    ok(run_cli("backup", "--db", pg_sample_agent.url, repo=repo, env=pg_env))
    dest = tmp_path / "new.db"
    out = ok(run_cli("restore", "latest", "--to", dest, "--json", repo=repo, env=pg_env))
    doc = json.loads(out.stdout)
    assert doc["tables"]["episodic_memory"]["inserted"] == 42
    assert "extension vector (embeddings are kept as base64 float32 text)" in doc["not_carried"]
    assert "index ix_episodic_memory_filter_tags_gin (gin, on an expression)" in doc["not_carried"]
    assert_same_memories(pg_sample_agent.sqlite_path, dest)


def test_older_client_than_server_is_refused_before_any_change(sqlite_backup, pg_sample_agent):
    """PATH's pg_dump is Debian's 15; the server is 18: the safety snapshot cannot be taken."""
    _, repo = sqlite_backup
    _edit(pg_sample_agent)
    before = table_md5s(pg_sample_agent.url)
    r = run_cli("restore", "latest", "--to", pg_sample_agent.url, "--memory-type", "episodic", repo=repo)
    assert_one_line_error(r, "pg_dump", "older than the PostgreSQL 18 server", "SNAPSTORE_PG_BIN")
    assert r.returncode == 3
    assert table_md5s(pg_sample_agent.url) == before


def test_pgvector_missing_on_the_target(sqlite_backup, postgres_server):
    """The Debian PostgreSQL 15 has no pgvector: refused, no database left behind."""
    _, repo = sqlite_backup
    postgres_server.drop_database("no_vector_here")
    r = run_cli("restore", "latest", "--to", postgres_server.url("no_vector_here"), repo=repo)
    assert_one_line_error(r, "pgvector")
    assert r.returncode == 3
    assert "no_vector_here" not in _databases(postgres_server)


def test_refused_connection(sqlite_backup):
    _, repo = sqlite_backup
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/agent"
    r = run_cli("restore", "latest", "--to", url, repo=repo)
    line = assert_one_line_error(r, "connection refused")
    assert r.returncode == 3 and "hunter2" not in line


def test_wrong_password(sqlite_backup, pg_server):
    _, repo = sqlite_backup
    pg_server.password_role("snapstore_pw", "right-password")
    name = pg_server.create_database()
    url = f"postgresql://snapstore_pw:wrong-password@{pg_server.host}:{pg_server.port}/{name}"
    r = run_cli("restore", "latest", "--to", url, repo=repo)
    line = assert_one_line_error(r, "wrong password", "snapstore_pw")
    assert r.returncode == 3 and "wrong-password" not in line


def test_missing_privileges(sqlite_backup, postgres18_server, pg_sample_agent):
    _, repo = sqlite_backup
    postgres18_server.password_role("snapstore_reader", "pw")
    with pg_sample_agent.connect(autocommit=True) as conn:
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO snapstore_reader")
    url = f"postgresql://snapstore_reader:pw@{postgres18_server.host}:{postgres18_server.port}/{pg_sample_agent.dbname}"
    before = table_md5s(pg_sample_agent.url)
    r = run_cli("restore", "latest", "--to", url, "--memory-type", "episodic", repo=repo)
    assert_one_line_error(r, "may not change table episodic_memory")
    assert r.returncode == 3
    # a new database it may not create
    r = run_cli("restore", "latest", "--to", url.rsplit("/", 1)[0] + "/not_allowed_db", repo=repo)
    assert_one_line_error(r, "may not create databases")
    assert table_md5s(pg_sample_agent.url) == before


def test_a_password_never_reaches_output_repository_or_results(sqlite_backup, postgres18_server, pg_env):
    _, repo = sqlite_backup
    postgres18_server.password_role("snapstore_owner", "s3cr3t-pw")
    with psycopg.connect(postgres18_server.dsn("postgres"), autocommit=True) as conn:
        conn.execute("ALTER ROLE snapstore_owner SUPERUSER")  # creates the database and pgvector
    postgres18_server.drop_database("owned_agent")
    url = f"postgresql://snapstore_owner:s3cr3t-pw@{postgres18_server.host}:{postgres18_server.port}/owned_agent"
    first = ok(run_cli("restore", "latest", "--to", url, "--json", repo=repo, env=pg_env))
    again = ok(run_cli("restore", "latest", "--to", url, "--memory-type", "episodic", repo=repo, env=pg_env))
    assert json.loads(first.stdout)["target"].startswith("postgresql://snapstore_owner:***@")
    assert "to undo" in again.stdout  # a safety snapshot of the PostgreSQL target was stored
    for out in (first, again):
        assert "s3cr3t" not in out.stdout + out.stderr
    objects = RepoObjects(repo)
    try:
        for name in objects.names():
            assert b"s3cr3t" not in objects.read(name), name
    finally:
        objects.close()


def test_missing_client_tools_give_the_hint(sqlite_backup, pg_sample_agent, tmp_path):
    """No pg_dump where SNAPSTORE_PG_BIN points: the safety snapshot cannot be taken; nothing changed."""
    _, repo = sqlite_backup
    before = table_md5s(pg_sample_agent.url)
    empty = tmp_path / "no-tools"
    empty.mkdir()
    r = run_cli("restore", "latest", "--to", pg_sample_agent.url, "--memory-type", "episodic", repo=repo,
                env=cli_env(SNAPSTORE_PG_BIN=str(empty)))
    assert_one_line_error(r, "pg_dump not found", "SNAPSTORE_PG_BIN")
    assert r.returncode == 3
    assert table_md5s(pg_sample_agent.url) == before


def test_only_conversations_replaces_messages_alone(sqlite_backup, pg_sample_agent, pg_env):
    _, repo = sqlite_backup
    doc, original, edited = _restore_one_part(repo, pg_sample_agent, pg_env, "--only", "conversations")
    assert doc["tables"] == {"messages": {"deleted": 1, "inserted": 1}}
    _only_changed(pg_sample_agent, "messages", original, edited)
