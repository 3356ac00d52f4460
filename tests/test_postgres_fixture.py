"""The throwaway PostgreSQL server of tests/conftest.py is real and usable:
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


def test_server_answers(postgres_server):
    assert postgres_server.user == "postgres"
    assert postgres_server.host == "127.0.0.1"
    assert postgres_server.url("x").startswith("postgresql://postgres@127.0.0.1:")
    assert postgres_server.sqlalchemy_url("x").startswith("postgresql+psycopg://")
    with psycopg.connect(postgres_server.url("postgres")) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
    assert int(version) >= 100000
    if postgres_server.major:
        assert int(version) // 10000 == postgres_server.major


def test_create_database_is_fresh_and_empty(postgres_server):
    name = postgres_server.create_database("fixture_fresh")
    with psycopg.connect(postgres_server.dsn(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE leftover (x int)")
    # asking again gives an empty database of the same name
    assert postgres_server.create_database("fixture_fresh") == name
    with psycopg.connect(postgres_server.dsn(name)) as conn:
        n = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]
    assert n == 0
    # auto-generated names are distinct
    assert postgres_server.create_database() != postgres_server.create_database()


def test_pg_dump_and_psql_round_trip(postgres_server, tmp_path):
    from psycopg.types.json import Jsonb

    src = postgres_server.create_database("fixture_src")
    with psycopg.connect(postgres_server.dsn(src)) as conn:
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
            postgres_server.bin("pg_dump"),
            "--no-owner",
            "--format=plain",
            "--file", str(dump),
            "--dbname", postgres_server.url(src),
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

    dst = postgres_server.create_database("fixture_dst")
    r = subprocess.run(
        [
            postgres_server.bin("psql"),
            "-X",
            "--set", "ON_ERROR_STOP=on",
            "--quiet",
            "--dbname", postgres_server.url(dst),
            "-f", str(dump),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr

    original = _fetch_rows(postgres_server, src)
    restored = _fetch_rows(postgres_server, dst)
    assert len(original) == len(ROWS)
    assert restored == original
    assert [row[1] for row in restored] == [row[1] for row in ROWS]


def test_sqlalchemy_url_works(postgres_server):
    name = postgres_server.create_database("fixture_sqla")
    engine = sqlalchemy.create_engine(postgres_server.sqlalchemy_url(name))
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_database()")).scalar() == name
    finally:
        engine.dispose()
