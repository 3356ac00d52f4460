"""PostgreSQL rows (the server's COPY text) into Mirix's SQLite form: SQLite -> PostgreSQL ->
SQLite gives back equal memories, and what SQLite cannot hold is listed."""
from __future__ import annotations

import sqlite3

import pytest
from pg_agent import assert_same_memories, live_copy, live_tables

from snapstore.migrate.pg_to_sqlite import pg_only_objects, write_sqlite
from snapstore.sample_agent.schema import TABLES

pytestmark = pytest.mark.postgres


def test_round_trip_sqlite_postgres_sqlite(pg_sample_agent, tmp_path):
    dest = tmp_path / "back.db"
    with pg_sample_agent.connect() as conn:
        tables = live_tables(conn)
        result = write_sqlite(dest, tables, live_copy(conn))
    assert result.rows["episodic_memory"] == 42 and set(TABLES) <= set(result.rows)
    assert_same_memories(pg_sample_agent.sqlite_path, dest)
    conn = sqlite3.connect(dest)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # FTS5 rebuilt by Mirix's triggers as the rows went in
    word = conn.execute("SELECT summary FROM episodic_memory LIMIT 1").fetchone()[0].split()[1]
    assert conn.execute("SELECT count(*) FROM episodic_memory_fts WHERE episodic_memory_fts MATCH ?",
                        (word,)).fetchone()[0] >= 1
    # the PostgreSQL-only column came along
    assert "filter_tags" in [r[1] for r in conn.execute("PRAGMA table_info(episodic_memory)")]


def test_unknown_tables_and_odd_types_are_carried_and_listed(postgres18_server, tmp_path):
    import psycopg

    name = postgres18_server.create_database()
    with psycopg.connect(postgres18_server.dsn(name)) as conn:
        conn.execute("CREATE TABLE notes (id bigint PRIMARY KEY, tags text[], at timestamptz, "
                     "raw bytea, ok boolean, score real)")
        conn.execute("INSERT INTO notes VALUES (1, '{a,\"b c\"}', '2025-03-01 10:00:00.25+01', "
                     "'\\x00ff', true, 0.5), (2, NULL, NULL, NULL, false, NULL)")
        conn.commit()
        result = write_sqlite(tmp_path / "n.db", live_tables(conn), live_copy(conn))
    rows = sqlite3.connect(tmp_path / "n.db").execute("SELECT * FROM notes ORDER BY id").fetchall()
    assert rows == [(1, '{a,"b c"}', "2025-03-01 09:00:00.250000", b"\x00\xff", 1, 0.5),
                    (2, None, None, None, 0, None)]
    assert result.not_carried == ["column notes.tags text[]: kept as its PostgreSQL text"]


def test_pg_only_objects_are_named():
    post = ("CREATE INDEX ix_a ON public.t USING gin (((filter_tags)::jsonb));\n"
            "CREATE INDEX ix_b ON public.t USING btree (organization_id);\n"
            "CREATE INDEX ix_c ON public.t USING gin (to_tsvector('english'::regconfig, summary));\n")
    listed = pg_only_objects(post, ["plpgsql", "vector"], ["public.s_id_seq"])
    assert listed == ["extension vector (embeddings are kept as base64 float32 text)",
                      "index ix_a (gin, on an expression)", "index ix_c (gin)", "sequence public.s_id_seq"]
