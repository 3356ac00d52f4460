"""The loader: an SQLite agent into PostgreSQL 18 with Mirix's schema, every value equal."""
from __future__ import annotations

import json
import sqlite3

import psycopg
import pytest
from pg_agent import load_sqlite_agent

from snapstore.migrate.values import CannotCarry, decode_sqlite_embedding, padded, parse_vector_text
from snapstore.sample_agent.schema import EMBEDDING_COLUMNS, MEMORY_TABLES, TABLES
from snapstore.sample_agent.text import parse_db_time

pytestmark = pytest.mark.postgres


def test_every_row_and_value_arrives(pg_sample_agent):
    src = sqlite3.connect(pg_sample_agent.sqlite_path)
    with pg_sample_agent.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for table in TABLES:
            n = src.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == n, table
        for table in MEMORY_TABLES:
            emb = EMBEDDING_COLUMNS[table]
            cols = ["id", "last_modify", "created_at", *emb]
            pg = {r[0]: r for r in conn.execute(
                f"SELECT {', '.join(c if c not in emb else c + '::text' for c in cols)} FROM {table}")}
            for row in src.execute(f"SELECT {', '.join(cols)} FROM {table}"):
                other = pg[row[0]]
                assert other[1] == json.loads(row[1])  # json column: equal as JSON
                assert other[2].replace(tzinfo=None) == parse_db_time(row[2])  # UTC both sides
                for mine, theirs in zip(row[3:], other[3:]):
                    assert parse_vector_text(theirs) == padded(decode_sqlite_embedding(mine))


def test_schema_is_mirix_postgres(pg_sample_agent):
    with pg_sample_agent.connect() as conn:
        types = dict(conn.execute(
            "SELECT table_name || '.' || column_name, format_type(atttypid, atttypmod) "
            "FROM information_schema.columns c JOIN pg_attribute a "
            "ON a.attrelid = ('public.' || quote_ident(c.table_name))::regclass AND a.attname = c.column_name "
            "WHERE c.table_schema = 'public'").fetchall())
        assert types["episodic_memory.summary_embedding"] == "vector(4096)"
        assert types["episodic_memory.last_modify"] == "json"
        assert types["episodic_memory.filter_tags"] == "json"
        assert types["messages.created_at"] == "timestamp with time zone"
        assert types["episodic_memory.occurred_at"] == "timestamp without time zone"
        assert types["episodic_memory.id"] == "character varying"
        indexes = dict(conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'").fetchall())
        assert "USING gin (((filter_tags)::jsonb))" in indexes["ix_episodic_memory_filter_tags_gin"]
        assert "to_tsvector('english'::regconfig, (summary)::text)" in indexes["ix_episodic_memory_summary_fts"]
        assert "ix_episodic_memory_combined_fts" in indexes
        extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        assert {"vector", "pg_trgm"} <= extensions
        # full-text search and vector search work on the loaded rows
        word = conn.execute("SELECT split_part(summary, ' ', 2) FROM episodic_memory LIMIT 1").fetchone()[0]
        hits = conn.execute("SELECT count(*) FROM episodic_memory WHERE to_tsvector('english', summary) "
                            "@@ plainto_tsquery('english', %s)", (word,)).fetchone()[0]
        assert hits >= 1
        nearest = conn.execute("SELECT a.id = (SELECT b.id FROM episodic_memory b ORDER BY "
                               "b.summary_embedding <-> a.summary_embedding LIMIT 1) FROM episodic_memory a "
                               "LIMIT 1").fetchone()[0]
        assert nearest


def test_short_vectors_are_padded_long_ones_refused(postgres18_server, tmp_path):
    from snapstore.migrate.values import encode_sqlite_embedding
    from array import array

    db = tmp_path / "agent.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE semantic_memory (id VARCHAR PRIMARY KEY, name VARCHAR, name_embedding TEXT)")
    conn.execute("INSERT INTO semantic_memory VALUES ('sem-1', 'short', ?)", (encode_sqlite_embedding(array("f", [0.5, -2.0])),))
    conn.commit()
    name = postgres18_server.create_database()
    load_sqlite_agent(postgres18_server, name, db)
    with psycopg.connect(postgres18_server.dsn(name)) as pg:
        text = pg.execute("SELECT name_embedding::text FROM semantic_memory").fetchone()[0]
    vector = parse_vector_text(text)
    assert len(vector) == 4096 and vector[:2] == array("f", [0.5, -2.0]) and not any(vector[2:])

    conn.execute("INSERT INTO semantic_memory VALUES ('sem-2', 'long', ?)", (encode_sqlite_embedding(array("f", [1.0] * 4097)),))
    conn.commit()
    other = postgres18_server.create_database()
    with pytest.raises(CannotCarry, match="semantic_memory row sem-2: .*4097 dimensions"):
        load_sqlite_agent(postgres18_server, other, db)
    with psycopg.connect(postgres18_server.dsn(other)) as pg:  # the transaction left nothing behind
        assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
