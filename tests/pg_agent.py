"""PostgreSQL agents for tests: the sample agent loaded into PostgreSQL 18 + pgvector.

``pg_sample_agent`` (tests/conftest.py) gives each test its own database, a copy
(``CREATE DATABASE … TEMPLATE``) of one loaded once per session, plus the SQLite
agent it was loaded from.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import socket
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PgAgent:
    server: object  # tests.conftest.PostgresServer
    dbname: str
    sqlite_path: Path

    @property
    def url(self) -> str:
        return self.server.url(self.dbname)

    def connect(self, **kw) -> psycopg.Connection:
        return psycopg.connect(self.server.dsn(self.dbname), **kw)


def load_sqlite_agent(server, dbname: str, sqlite_path: Path) -> None:
    """Load an SQLite agent into the (empty) database ``dbname`` with snapstore's loader."""
    from snapstore.migrate.sqlite_to_pg import load_sqlite_database

    with psycopg.connect(server.dsn(dbname)) as conn:
        load_sqlite_database(str(sqlite_path), conn)
        conn.commit()


def copy_database(server, template: str, name: str | None = None) -> str:
    """A new database holding exactly what ``template`` holds (no one may be connected to it)."""
    import uuid

    name = name or "agent_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return name


def table_md5s(url_or_dsn: str, schema: str = "public") -> dict[str, tuple[int, str]]:
    """Per table: (row count, md5 of its rows' text sorted) -- equal content, whatever the order."""
    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(url_or_dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,))]
        for t in tables:
            rows = conn.execute(
                sql.SQL("SELECT md5(t::text) FROM {}.{} AS t").format(sql.Identifier(schema), sql.Identifier(t))
            ).fetchall()
            digest = hashlib.md5("".join(sorted(r[0] for r in rows)).encode()).hexdigest()
            out[t] = (len(rows), digest)
    return out


@dataclass
class LiveTable:
    """A table of a live database, shaped like a capture's TableInfo."""

    schema: str
    name: str
    columns: list[tuple[str, str]]
    primary_key: list[str]


def live_tables(conn: psycopg.Connection) -> list[LiveTable]:
    from snapstore.restore.pg_stage import introspect

    return [LiveTable("public", t.name, [(c.name, c.pg_type) for c in t.columns], t.primary_key)
            for t in introspect(conn).values()]


def live_copy(conn: psycopg.Connection):
    """``copy_data(table)`` over a live connection: the server's own COPY text, as a capture stores it."""
    def copy_data(table: LiveTable):
        cols = sql.SQL(", ").join(sql.Identifier(c) for c, _ in table.columns)
        with conn.cursor().copy(sql.SQL("COPY public.{} ({}) TO STDOUT").format(sql.Identifier(table.name), cols)) as cp:
            for block in cp:
                yield bytes(block)
    return copy_data


def _memory_rows(db, table):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return {r["id"]: dict(r) for r in conn.execute(f"SELECT * FROM {table}")}
    finally:
        conn.close()


def assert_same_memories(original, converted):
    """Every memory row equal: JSON as JSON, embeddings as padded float32 vectors, the rest exactly."""
    from snapstore.migrate.values import decode_sqlite_embedding, padded
    from snapstore.sample_agent.schema import EMBEDDING_COLUMNS, MEMORY_TABLES

    for table in (*MEMORY_TABLES, "messages", "block", "agents"):
        want, got = _memory_rows(original, table), _memory_rows(converted, table)
        assert want.keys() == got.keys(), table
        for key, row in want.items():
            other = got[key]
            for column, value in row.items():
                theirs = other[column]
                if column in EMBEDDING_COLUMNS.get(table, ()):
                    assert padded(decode_sqlite_embedding(theirs)) == padded(decode_sqlite_embedding(value))
                elif isinstance(value, str) and value[:1] in "[{":
                    assert json.loads(theirs) == json.loads(value), (table, column)
                else:
                    assert theirs == value, (table, key, column)
