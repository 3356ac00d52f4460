"""Mirix's PostgreSQL schema keeps the SQLite agent's table and column names."""
from __future__ import annotations

import sqlite3

from snapstore.mirix_schema.postgres import pg_type_for, sample_agent_schema
from snapstore.sample_agent.schema import create_schema


def test_same_tables_and_columns_as_the_sqlite_sample():
    conn = sqlite3.connect(":memory:")
    create_schema(conn)
    schema = sample_agent_schema()
    for table in schema.tables:
        sqlite_cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table.name}")')]
        pg_cols = [c.name for c in table.columns]
        assert pg_cols[: len(sqlite_cols)] == sqlite_cols
        assert set(pg_cols) - set(sqlite_cols) <= {"filter_tags"}
    assert not any(t.name.endswith("_fts") or "_fts_" in t.name for t in schema.tables)
    assert any("episodic_memory_fts" in n for n in schema.not_carried)
    # sections in pg_dump's order: extensions and tables first, indexes and keys after the rows
    assert schema.required_extensions == ["vector"] and "pg_trgm" in schema.extensions
    assert schema.sql().startswith("CREATE EXTENSION IF NOT EXISTS \"vector\"")
    assert all(s.startswith("CREATE TABLE") for s in schema.pre_data)
    assert all(s.startswith(("ALTER TABLE", "CREATE INDEX", "CREATE UNIQUE INDEX")) for s in schema.post_data)


def test_types_follow_mirix_orm():
    assert pg_type_for("summary_embedding", "TEXT") == "vector(4096)"
    assert pg_type_for("filter_tags", "JSON") == "json"
    assert pg_type_for("created_at", "DATETIME") == "timestamp with time zone"
    assert pg_type_for("occurred_at", "DATETIME") == "timestamp without time zone"
    assert pg_type_for("is_deleted", "BOOLEAN") == "boolean"
    assert pg_type_for("limit", "INTEGER") == "integer"
    assert pg_type_for("id", "VARCHAR") == "character varying"
