"""PostgreSQL capture on a real server: the reader gives back every row, the schema and the
sequences; a 1% day re-reads only the ranges it touched; an unchanged database reads nothing."""
from __future__ import annotations

import json

import psycopg
import pytest
import yaml

import pg_agent_schema as schema
from pg_agent_schema import cli_pg_env, server  # noqa: F401  (server: a fixture)
from helpers import cli_env, ok, run_cli
from snapstore.backup import backup_agent
from snapstore.repository import Repository
from snapstore.sources.agent import load_agent_source
from snapstore.sources.postgres.layout import CLEAN_PATH, INFO_PATH, POST_DATA_PATH, PRE_DATA_PATH
from snapstore.sources.postgres.reader import open_pg_capture

pytestmark = pytest.mark.postgres


@pytest.fixture
def agent_db(server):
    name = server.create_database()
    with psycopg.connect(server.dsn(name), autocommit=True) as conn:
        schema.create(conn)
    return name


def backup(repo: Repository, url: str, **kw):
    return backup_agent(repo, load_agent_source(db_path=url), **kw)


def test_reader_gives_back_every_table_schema_and_sequence(server, agent_db, tmp_path):
    repo = Repository.init(tmp_path / "repo")
    result = backup(repo, server.url(agent_db))
    capture = open_pg_capture(repo, "latest")
    assert result.snapshot.database["type"] == "postgresql"
    tables = {t.key: t for t in capture.tables()}
    assert set(tables) == {"public.agents", "public.memories", "public.accounts", "public.event_log",
                           "public.tools_agents"}
    assert tables["public.memories"].primary_key == ["id"]
    assert tables["public.tools_agents"].primary_key == ["agent_id", "tool_id"]
    assert tables["public.event_log"].primary_key == []
    assert dict(tables["public.memories"].columns)["tags"] == "jsonb"
    with psycopg.connect(server.dsn(agent_db)) as conn:
        for key, table in tables.items():
            expected = bytearray()
            with conn.cursor().copy(f"COPY (SELECT {table.column_list()} FROM {table.qualified} "
                                    f"ORDER BY {', '.join(table.primary_key) or 'seq'}) TO STDOUT") as copy:
                for block in copy:
                    expected += block
            assert b"".join(capture.copy_data(table)) == bytes(expected), key
            assert table.row_count == conn.execute(f"SELECT count(*) FROM {table.qualified}").fetchone()[0]
    assert capture.sequences() == {"public.event_seq": 150}
    assert "CREATE TABLE public.memories" in capture.schema_sql("pre-data")
    assert "CREATE FUNCTION public.bump()" in capture.schema_sql("pre-data")
    post = capture.schema_sql("post-data")
    for needle in ("memories_agent_idx", "FOREIGN KEY (agent_id)", "CREATE TRIGGER memories_bump",
                   "PRIMARY KEY (agent_id, tool_id)"):
        assert needle in post
    assert "DROP TABLE IF EXISTS public.memories;" in capture.schema_sql("clean")
    assert capture.server_version.split(".")[0] == str(server.major)
    read = result.snapshot.database["read"]
    assert read["full_reads"]["public.memories"] == "new table"
    assert read["ranges"] > 10  # ~3 MB of memories in ranges of ~256 KiB


def test_one_percent_day_rereads_only_the_touched_ranges(server, agent_db, tmp_path):
    repo = Repository.init(tmp_path / "repo")
    url = server.url(agent_db)
    first = backup(repo, url).snapshot
    memories = next(t for t in open_pg_capture(repo, first).tables() if t.name == "memories")
    bounds = memories.ranges["bounds"]
    with psycopg.connect(server.dsn(agent_db), autocommit=True) as conn:
        before = {r[0]: r[1] for r in conn.execute("SELECT id, xmin::text FROM memories")}
        touched = schema.one_percent_day(conn)
        conn.execute("CREATE TEMP TABLE scratch (x int)")  # leaves this backend's pg_temp schema behind
        conn.execute("DROP TABLE scratch")
        after = {r[0]: r[1] for r in conn.execute("SELECT id, xmin::text FROM memories")}
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    touched_ranges = {sum(1 for b in bounds if b <= key) for key in changed}  # COLLATE "C"-like keys
    second = backup(repo, url).snapshot
    read = second.database["read"]
    assert "public.memories" not in read["full_reads"]
    # memories: exactly the touched ranges; the four small tables are one range each, unchanged
    assert read["ranges_read"] == len(touched_ranges) < (len(bounds) + 1) // 2
    with psycopg.connect(server.dsn(agent_db)) as conn:
        keys = [r[0] for r in conn.execute("SELECT id FROM memories")]
    rows_in = {i: sum(1 for key in keys if sum(1 for b in bounds if b <= key) == i) for i in touched_ranges}
    assert read["rows_read"] == sum(rows_in.values()) < memories.row_count // 2
    assert second.parent == first.id and touched == len(changed)
    # ranges keep their slots in the table's chunk list: a patch on the parent's base, not a new list
    before_ref, after_ref = first.file(memories.file).chunks, second.file(memories.file).chunks
    assert before_ref.base is not None and after_ref.base == before_ref.base and after_ref.patch is not None
    # what was not read is still exact: the reader's rows equal the server's
    capture = open_pg_capture(repo, second)
    table = capture.table("memories")
    with psycopg.connect(server.dsn(agent_db)) as conn:
        expected = bytearray()
        with conn.cursor().copy(f"COPY (SELECT {table.column_list()} FROM memories ORDER BY id) TO STDOUT") as cp:
            for block in cp:
                expected += block
    assert b"".join(capture.copy_data(table)) == bytes(expected)
    # nothing changed since: nothing is read, and the data files are the parent's entries
    third = backup(repo, url).snapshot
    assert third.database["read"]["ranges_read"] == 0
    assert third.file(table.file).chunks == second.file(table.file).chunks
    for path in (PRE_DATA_PATH, POST_DATA_PATH, CLEAN_PATH, INFO_PATH):  # pg_dump's random \restrict key left out
        assert third.file(path).digest == second.file(path).digest, path
    assert third.summary["added_chunks"] == 0
    assert not third.database["schema_dumped"] and second.database["schema_dumped"] is False


def test_changed_columns_read_the_table_whole_and_say_so(server, agent_db, tmp_path):
    repo = Repository.init(tmp_path / "repo")
    url = server.url(agent_db)
    backup(repo, url)
    with psycopg.connect(server.dsn(agent_db), autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts ADD COLUMN note text DEFAULT 'n/a'")  # no new row versions
    snap = backup(repo, url).snapshot
    assert snap.database["read"]["full_reads"] == {"public.accounts": "ranges chosen again"}
    assert snap.database["schema_dumped"]  # the catalogs changed: pg_dump ran again
    assert "note text DEFAULT 'n/a'::text" in open_pg_capture(repo, snap).schema_sql("pre-data")
    rows = b"".join(open_pg_capture(repo, snap).copy_data("accounts")).splitlines()
    assert len(rows) == 20 and all(r.endswith(b"\tn/a") for r in rows)


def test_read_all_reads_everything(server, agent_db, tmp_path):
    repo = Repository.init(tmp_path / "repo")
    url = server.url(agent_db)
    first = backup(repo, url).snapshot
    again = backup(repo, url, read_all=True).snapshot
    assert again.database["read"]["ranges_read"] == again.database["read"]["ranges"]
    assert set(again.database["read"]["full_reads"].values()) == {"read-all"}
    assert again.file(INFO_PATH).size > 0 and again.summary["new_data_bytes"] < first.summary["new_data_bytes"] // 10


def test_password_is_never_stored(server, agent_db, tmp_path):
    """The test server trusts local connections, so any password is accepted and must vanish."""
    repo_path = tmp_path / "repo"
    ok(run_cli("init", repo=repo_path))
    url = f"postgresql://postgres:s3cr3t-Pa55@{server.host}:{server.port}/{agent_db}"
    result = ok(run_cli("backup", "--db", url, "--json", repo=repo_path, env=cli_pg_env(server)))
    assert "s3cr3t" not in result.stdout + result.stderr
    shown = ok(run_cli("show", "latest", "--json", repo=repo_path)).stdout
    assert "s3cr3t" not in shown and "postgres:***@" in shown
    for path in repo_path.rglob("*"):
        if path.is_file():
            assert b"s3cr3t" not in path.read_bytes(), path
    export = tmp_path / "export"
    ok(run_cli("export", "latest", export, repo=repo_path, env=cli_pg_env(server)))
    for path in export.rglob("*"):
        if path.is_file():
            assert b"s3cr3t" not in path.read_bytes(), path


def test_unreachable_server_is_one_line(tmp_path):
    repo_path = tmp_path / "repo"
    ok(run_cli("init", repo=repo_path))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli("backup", "--db", f"postgresql://postgres:pw@127.0.0.1:{port}/mirix", repo=repo_path)
    assert result.returncode == 3
    assert result.stderr.startswith("snapstore: cannot connect to postgresql://postgres:***@127.0.0.1")
    assert len(result.stderr.strip().splitlines()) == 1 and "pw@" not in result.stderr
    assert Repository.open(repo_path).snapshot_ids() == []


@pytest.mark.parametrize("how", ["database_url", "MIRIX_PG_URI", "pg_settings"])
def test_config_names_the_postgres_database(postgres_server, tmp_path, how):
    """The config's database_url, else MIRIX_PG_URI, else pg_* settings (SPEC.md §3)."""
    name = postgres_server.create_database()
    with psycopg.connect(postgres_server.dsn(name), autocommit=True) as conn:
        schema.create(conn, rows=20)
    config = {"agent_name": "pg-agent", "model_name": "m"}
    env = cli_env(SNAPSTORE_PG_BIN=str(postgres_server.bindir))
    if how == "database_url":
        config["database_url"] = postgres_server.url(name)
    elif how == "MIRIX_PG_URI":
        env["MIRIX_PG_URI"] = postgres_server.url(name)
    else:
        config.update(pg_user="postgres", pg_password="hunter2-pw", pg_host=postgres_server.host,
                      pg_port=postgres_server.port, pg_db=name)
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "mirix.yaml").write_text(yaml.safe_dump(config))
    repo_path = tmp_path / "repo"
    ok(run_cli("init", repo=repo_path))
    ok(run_cli("backup", "--config", agent / "mirix.yaml", repo=repo_path, env=env))
    repo = Repository.open(repo_path)
    capture = open_pg_capture(repo, "latest")
    assert capture.table("memories").row_count == 20
    assert capture.snapshot.agent == "pg-agent"
    assert capture.snapshot.source["database"].endswith(f"@{postgres_server.host}:{postgres_server.port}/{name}")
    exported = tmp_path / "export"
    ok(run_cli("export", "latest", exported, repo=repo_path, env=env))
    assert json.loads((exported / "metadata.json").read_text())["backup_info"]["database_type"] == "postgresql"
    assert ok(run_cli("verify-folder", exported)).returncode == 0
    assert b"hunter2" not in (exported / "config" / "mirix.yaml").read_bytes()


def test_a_range_outgrowing_its_slots_gets_a_new_layout(server, agent_db, tmp_path):
    repo = Repository.init(tmp_path / "repo")
    url = server.url(agent_db)
    first = backup(repo, url).snapshot
    memories = open_pg_capture(repo, first).table("memories")
    low = memories.ranges["bounds"][10]
    with psycopg.connect(server.dsn(agent_db), autocommit=True) as conn:
        # 8 more rows of ~20 KB inside one range: more chunks than its slots, fewer rows than a re-cut
        conn.execute("INSERT INTO memories (id, agent_id, body) SELECT %s || '-' || i, 'agent-1', "
                     "repeat(md5(i::text || %s), 600) FROM generate_series(1, 8) i", (low, low))
    second = backup(repo, url).snapshot
    assert second.database["read"]["ranges_read"] == 1 and not second.database["read"]["full_reads"]
    table = open_pg_capture(repo, second).table("memories")
    assert table.ranges["chunks"][11] > memories.ranges["slots"][11]
    assert second.file(table.file).chunks.base != first.file(table.file).chunks.base  # written whole once
    with psycopg.connect(server.dsn(agent_db)) as conn:
        expected = bytearray()
        with conn.cursor().copy(f"COPY (SELECT {table.column_list()} FROM memories ORDER BY id) TO STDOUT") as cp:
            for block in cp:
                expected += block
    assert b"".join(open_pg_capture(repo, second).copy_data(table)) == bytes(expected)


def test_keys_with_quotes_backslashes_and_braces_are_range_bounds(server, tmp_path):
    """Range bounds travel as one text[] literal: keys that need quoting in it still cut the
    table into ranges, and a change re-reads only its own range."""
    name = server.create_database()
    keys = [f'k{i:03d} "q" \\b {{c,}} ' + "é" * (i % 3) for i in range(120)]
    with psycopg.connect(server.dsn(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE odd (id text PRIMARY KEY, v text)")
        with conn.cursor().copy("COPY odd (id, v) FROM STDIN") as copy:
            for key in keys:
                copy.write_row((key, "x" * 2000))
    repo = Repository.init(tmp_path / "repo")
    first = backup(repo, server.url(name)).snapshot
    odd = open_pg_capture(repo, first).table("odd")
    assert len(odd.ranges["bounds"]) > 4 and set(odd.ranges["bounds"]) <= set(keys)
    with psycopg.connect(server.dsn(name), autocommit=True) as conn:
        conn.execute("UPDATE odd SET v = 'changed' WHERE id = %s", (keys[57],))
    second = backup(repo, server.url(name)).snapshot
    assert second.database["read"]["ranges_read"] == 1 and second.database["read"]["rows_read"] <= 8
    capture = open_pg_capture(repo, second)
    with psycopg.connect(server.dsn(name)) as conn:
        expected = bytearray()
        with conn.cursor().copy("COPY (SELECT id, v FROM odd ORDER BY id) TO STDOUT") as cp:
            for block in cp:
                expected += block
    assert b"".join(capture.copy_data(capture.table("odd"))) == bytes(expected)
