"""The throwaway PostgreSQL servers of tests/conftest.py (15 and 18) are real and usable:
psycopg writes rows, the server's own pg_dump dumps them, psql loads the dump
into another fresh database and the rows come back identical."""
from __future__ import annotations

import subprocess

import psycopg
import pytest
import sqlalchemy

pytestmark = pytest.mark.postgres

ROWS = [
    (1, "plain text", 1.5, {"kind": "episodic"}),
    (2, "it's quoted \"twice\"", -2.25, {"kind": "semantic", "tags": ["a", "b"]}),
    (3, "tab\tand\nnewline and backslash \\ here", 0.0, {}),
    (4, "ünïcødé — 記憶 🧠", 1e-7, {"nested": {"x": [1, 2, 3]}}),
    (5, None, None, None),
]


def _fetch_rows(server, dbname):
    with psycopg.connect(server.dsn(dbname)) as conn:
        return conn.execute(
            "SELECT id, body, score, meta FROM memory ORDER BY id"
        ).fetchall()


def test_server_answers(pg_server):
    assert pg_server.user == "postgres"
    assert pg_server.host == "127.0.0.1"
    assert pg_server.url("x").startswith("postgresql://postgres@127.0.0.1:")
    assert pg_server.sqlalchemy_url("x").startswith("postgresql+psycopg://")
    with psycopg.connect(pg_server.url("postgres")) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
    assert int(version) >= 100000
    if pg_server.major:
        assert int(version) // 10000 == pg_server.major


def test_create_database_is_fresh_and_empty(pg_server):
    name = pg_server.create_database("fixture_fresh")
    with psycopg.connect(pg_server.dsn(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE leftover (x int)")
    # asking again gives an empty database of the same name
    assert pg_server.create_database("fixture_fresh") == name
    with psycopg.connect(pg_server.dsn(name)) as conn:
        n = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]
    assert n == 0
    # auto-generated names are distinct
    assert pg_server.create_database() != pg_server.create_database()


def test_pg_dump_and_psql_round_trip(pg_server, tmp_path):
    from psycopg.types.json import Jsonb

    src = pg_server.create_database("fixture_src")
    with psycopg.connect(pg_server.dsn(src)) as conn:
        conn.execute(
            "CREATE TABLE memory (id int PRIMARY KEY, body text, score double precision, meta jsonb)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO memory VALUES (%s, %s, %s, %s)",
                [(i, b, s, Jsonb(m) if m is not None else None) for i, b, s, m in ROWS],
            )
        conn.commit()

    dump = tmp_path / "dump.sql"
    subprocess.run(
        [
            pg_server.bin("pg_dump"),
            "--no-owner",
            "--format=plain",
            "--file", str(dump),
            "--dbname", pg_server.url(src),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    text = dump.read_text(encoding="utf-8")
    assert "CREATE TABLE public.memory" in text
    # COPY data lines: tab-separated, text escaped the COPY way
    assert "1\tplain text\t1.5\t" in text
    assert "tab\\tand\\nnewline and backslash \\\\ here" in text
    assert "ünïcødé — 記憶 🧠" in text
    assert "5\t\\N\t\\N\t\\N" in text

    dst = pg_server.create_database("fixture_dst")
    r = subprocess.run(
        [
            pg_server.bin("psql"),
            "-X",
            "--set", "ON_ERROR_STOP=on",
            "--quiet",
            "--dbname", pg_server.url(dst),
            "-f", str(dump),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr

    original = _fetch_rows(pg_server, src)
    restored = _fetch_rows(pg_server, dst)
    assert len(original) == len(ROWS)
    assert restored == original
    assert [row[1] for row in restored] == [row[1] for row in ROWS]


def test_sqlalchemy_url_works(pg_server):
    name = pg_server.create_database("fixture_sqla")
    engine = sqlalchemy.create_engine(pg_server.sqlalchemy_url(name))
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_database()")).scalar() == name
    finally:
        engine.dispose()


def test_pg18_has_pgvector(postgres18_server):
    assert postgres18_server.major == 18
    name = postgres18_server.create_database()
    with psycopg.connect(postgres18_server.dsn(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE TABLE e (id text PRIMARY KEY, v vector(3))")
        conn.execute("INSERT INTO e VALUES ('a', '[1,2,3]'), ('b', '[1,2,4]')")
        nearest = conn.execute("SELECT id FROM e ORDER BY v <-> '[1,2,4.1]' LIMIT 1").fetchone()[0]
    assert nearest == "b"
    # its client tools are the server's own version
    out = subprocess.run([postgres18_server.bin("pg_dump"), "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert " 18." in out
