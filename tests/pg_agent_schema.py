"""A small PostgreSQL schema with what a capture must carry (runs on 15, no pgvector):
text primary keys in random order, json and jsonb columns, a bytea column, a table
without a primary key, one with a composite key, a sequence, an index, a foreign key,
a trigger and its function, awkward values (tabs, newlines, backslashes, NULLs, unicode).

``fill(conn, rows)`` makes ``memories`` large enough to be cut into several key ranges.
"""
from __future__ import annotations

import random
import uuid

import psycopg
import pytest

from helpers import cli_env


@pytest.fixture
def server(pg_server, monkeypatch):
    """Each test server in turn (15 and 18), with its own client tools (pg_dump 18 for the 18 server)."""
    monkeypatch.setenv("SNAPSTORE_PG_BIN", str(pg_server.bindir))
    return pg_server


def cli_pg_env(server) -> dict:
    """The CLI's environment for ``server``: its client tools."""
    return cli_env(SNAPSTORE_PG_BIN=str(server.bindir))

SCHEMA = r"""
CREATE SEQUENCE event_seq START 100;
CREATE TABLE agents (id text PRIMARY KEY, name text NOT NULL, config json);
CREATE TABLE memories (
    id text PRIMARY KEY, agent_id text REFERENCES agents(id), body text, tags jsonb,
    blob bytea, score double precision, n integer DEFAULT 0, updated_at timestamptz DEFAULT now());
CREATE INDEX memories_agent_idx ON memories (agent_id, n);
CREATE TABLE accounts (id text PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE event_log (seq bigint DEFAULT nextval('event_seq'), what text);
CREATE TABLE tools_agents (agent_id text, tool_id text, PRIMARY KEY (agent_id, tool_id));
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.n := coalesce(OLD.n, 0) + 1; RETURN NEW; END $$;
CREATE TRIGGER memories_bump BEFORE UPDATE ON memories FOR EACH ROW EXECUTE FUNCTION bump();
"""

AWKWARD = ["tab\there", "new\nline", "back\\slash \\N", "ünïcødé — 記憶 🧠", "", "quote ' \" done"]


def memory_id(rng: random.Random) -> str:
    return f"mem-{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def memory_row(rng: random.Random, agent: str) -> tuple:
    text = " ".join(rng.choice(AWKWARD + ["alpha", "beta", "gamma"]) for _ in range(8))
    body = text + " " + rng.randbytes(2500).hex()  # ~5 KB, stored compressed to ~3 KB
    return (memory_id(rng), agent, body, psycopg.types.json.Jsonb({"scope": rng.choice(["a", "b"]), "k": [1, 2]}),
            bytes(rng.getrandbits(8) for _ in range(16)) if rng.random() < 0.5 else None,
            rng.random() if rng.random() < 0.9 else None)


def create(conn: psycopg.Connection, rows: int = 1000, seed: int = 1) -> None:
    rng = random.Random(seed)
    conn.execute(SCHEMA)
    conn.execute("INSERT INTO agents VALUES ('agent-1', 'first', '{\"model\": \"x\",  \"spaced\": true}'), "
                 "('agent-2', 'second', NULL)")
    insert_memories(conn, rng, rows)
    conn.execute("INSERT INTO accounts SELECT 'acct-' || i, 1000 FROM generate_series(1, 20) i")
    conn.execute("INSERT INTO event_log (what) SELECT 'event ' || i FROM generate_series(1, 50) i")
    conn.execute("INSERT INTO tools_agents VALUES ('agent-1', 'tool-a'), ('agent-1', 'tool-b'), ('agent-2', 'tool-a')")
    conn.execute("SELECT nextval('event_seq')")


def insert_memories(conn: psycopg.Connection, rng: random.Random, rows: int) -> list[str]:
    data = [memory_row(rng, rng.choice(["agent-1", "agent-2"])) for _ in range(rows)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO memories (id, agent_id, body, tags, blob, score) VALUES (%s, %s, %s, %s, %s, %s)",
                        data)
    return [r[0] for r in data]


def one_percent_day(conn: psycopg.Connection, seed: int = 2) -> int:
    """DELETE, UPDATE and INSERT about 1% of the memories, as the application does; returns rows touched."""
    rng = random.Random(seed)
    ids = [r[0] for r in conn.execute("SELECT id FROM memories ORDER BY id")]
    k = max(3, len(ids) // 100)
    picked = rng.sample(ids, k)
    third = k // 3
    conn.execute("DELETE FROM memories WHERE id = ANY(%s)", (picked[:third],))
    conn.execute("UPDATE memories SET body = body || ' edited' WHERE id = ANY(%s)", (picked[third:2 * third],))
    insert_memories(conn, rng, k - 2 * third)
    return k


def table_digests(conn: psycopg.Connection) -> dict[str, tuple[int, str]]:
    """Per user table: row count and md5 of its rows in a stable order (text of each row)."""
    names = [r[0] for r in conn.execute(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")]
    out = {}
    for name in names:
        count, digest = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {name} t").fetchone()
        out[name] = (count, digest)
    return out


def schema_objects(conn: psycopg.Connection) -> dict[str, list]:
    """Indexes, constraints and triggers by definition, and sequence values."""
    return {
        "indexes": conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1").fetchall(),
        "constraints": conn.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2").fetchall(),
        "triggers": conn.execute("SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
                                 "ORDER BY 1").fetchall(),
        "sequences": conn.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1").fetchall(),
    }
