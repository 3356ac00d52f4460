"""``run_post_migration_tests(agent)``: is the restored agent whole and usable?

Checks (each True/False in ``checks``; a failure is also a line in ``warnings``):

* ``database`` — the database opens and passes SQLite's ``quick_check``;
* ``memories_readable`` — every row of every memory table reads back, its JSON
  columns parse and its embeddings decode;
* ``memory_counts`` / ``conversation_count`` — the rows match the counts the
  backup's ``metadata.json`` recorded (from the backup the agent was loaded from,
  or ``backup_path``);
* ``search_index`` — every FTS5 index passes its ``integrity-check``.

A PostgreSQL agent gets the same checks asked of the server (``_postgres_checks``).

Advisory warnings that do not fail the run: another Mirix version, and config
settings still holding the redaction marker (fill them in again).
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from ..errors import SnapstoreError
from ..export.sqlite_content import JSON_COLUMNS
from ..folder.layout import read_metadata
from ..memory_types import CONVERSATION_TABLE, memory_tables
from ..sanitize import MARKER
from ..sqlite_uri import sqlite_uri
from .opened import opened_backup

if TYPE_CHECKING:
    from .wrapper import AgentWrapper

EMBEDDING_SUFFIX = "_embedding"


def _expected(agent: "AgentWrapper", backup_path, encryption_key) -> dict | None:
    if backup_path is None and agent.last_load is not None:
        return agent.last_load.get("backup_verification") or {}
    if backup_path is None:
        return None
    with opened_backup(backup_path, encryption_key) as folder:
        return read_metadata(folder).get("verification", {})


def _readable(conn: sqlite3.Connection, table: str) -> list[str]:
    problems = []
    cur = conn.execute(f'SELECT rowid, * FROM "{table}"')
    names = [d[0] for d in cur.description]
    for row in cur:
        for name, value in zip(names[1:], row[1:]):
            if not isinstance(value, str) or not value:
                continue
            try:
                if name in JSON_COLUMNS and value[:1] in "[{":
                    json.loads(value)
                elif name.endswith(EMBEDDING_SUFFIX):
                    base64.b64decode(value, validate=True)
            except (ValueError, binascii.Error):
                problems.append(f"{table} row {row[0]}: column {name} does not decode")
                if len(problems) >= 5:
                    return problems
    return problems


def _fts_tables(conn: sqlite3.Connection) -> list[str]:
    return [n for n, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table'")
            if sql and "USING FTS5" in " ".join(sql.upper().split())]


def _markers(doc: Any, path: str = "") -> list[str]:
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _markers(v, f"{path}.{k}" if path else str(k))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in _markers(v, f"{path}[{i}]")]
    return [path] if isinstance(doc, str) and MARKER in doc else []


def _sqlite_checks(agent: "AgentWrapper", checks: dict, warnings: list, counts: dict) -> int | None:
    """The SQLite agent's checks; returns its conversation count."""
    conversations = None
    db = agent.db_path
    if not Path(db).is_file():
        raise SnapstoreError(f"the agent's database {db} does not exist")
    conn = sqlite3.connect(sqlite_uri(db, mode="ro"), uri=True)
    try:
        quick = conn.execute("PRAGMA quick_check").fetchall()
        checks["database"] = quick == [("ok",)]
        if not checks["database"]:
            warnings.append(f"database {db} fails quick_check: {quick[0][0]}")
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        problems = []
        for kind, table in memory_tables(agent.config).items():
            if table not in tables:
                problems.append(f"memory table {table} ({kind}) is missing")
                continue
            counts[kind] = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            problems += _readable(conn, table)
        checks["memories_readable"] = not problems
        warnings += problems
        if CONVERSATION_TABLE in tables:
            conversations = conn.execute(f'SELECT count(*) FROM "{CONVERSATION_TABLE}"').fetchone()[0]
    finally:
        conn.close()
    fts_problems = []
    rw = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        for name in _fts_tables(rw):
            try:
                rw.execute(f'INSERT INTO "{name}"("{name}") VALUES (\'integrity-check\')')
            except sqlite3.DatabaseError as exc:
                fts_problems.append(f"search index {name} fails its integrity-check: {exc}")
    finally:
        rw.close()
    checks["search_index"] = not fts_problems
    warnings += fts_problems
    return conversations


def _postgres_checks(agent: "AgentWrapper", checks: dict, warnings: list, counts: dict) -> int | None:
    """The PostgreSQL agent's checks: the server's types already guarantee that json parses and
    vectors decode, so "readable" is every memory table present and readable, "search_index"
    every index valid (a failed CREATE INDEX CONCURRENTLY leaves an invalid one)."""
    from ..sources.postgres.connect import PgTarget

    with PgTarget.from_url(agent.database_url).connect() as conn:
        checks["database"] = conn.execute("SELECT 1").fetchone() == (1,)
        tables = {n for (n,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        problems = []
        for kind, table in memory_tables(agent.config).items():
            if table not in tables:
                problems.append(f"memory table {table} ({kind}) is missing")
                continue
            counts[kind] = conn.execute(f'SELECT count(*) FROM public."{table}"').fetchone()[0]
        checks["memories_readable"] = not problems
        warnings += problems
        invalid = [n for (n,) in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT i.indisvalid")]
        checks["search_index"] = not invalid
        warnings += [f"index {n} is invalid: REINDEX it" for n in invalid]
        if CONVERSATION_TABLE in tables:
            return conn.execute(f'SELECT count(*) FROM public."{CONVERSATION_TABLE}"').fetchone()[0]
    return None


def run_post_migration_tests(agent: "AgentWrapper", backup_path: str | os.PathLike | None = None, *,
                             encryption_key: str | bytes | None = None) -> dict:
    checks: dict[str, bool] = {}
    warnings: list[str] = []
    counts: dict[str, int] = {}
    conversations = None
    try:
        agent.reload()
        run = _sqlite_checks if agent.db_path is not None else _postgres_checks
        conversations = run(agent, checks, warnings, counts)

        expected = _expected(agent, backup_path, encryption_key)
        if expected is None:
            warnings.append("no backup to compare counts with: give backup_path")
        else:
            want = expected.get("memory_counts") or {}
            if want:
                wrong = [f"{k}: {counts.get(k, 0)} rows, the backup has {n}" for k, n in sorted(want.items())
                         if counts.get(k, 0) != n]
                checks["memory_counts"] = not wrong
                warnings += [f"memory count mismatch for {w}" for w in wrong]
            if "conversation_count" in expected:
                checks["conversation_count"] = conversations == expected["conversation_count"]
                if not checks["conversation_count"]:
                    warnings.append(f"conversation count mismatch: {conversations} messages, the backup has "
                                    f"{expected['conversation_count']}")
        if agent.last_load:
            warnings += agent.last_load.get("warnings", [])
        warnings += [f"config setting {p} still holds {MARKER}: set it again" for p in _markers(agent.config)]
    except (SnapstoreError, OSError, sqlite3.Error, psycopg.Error) as exc:
        checks["database"] = False
        warnings.append(getattr(exc, "message", None) or str(exc))
    return {"all_passed": bool(checks) and all(checks.values()), "warnings": warnings, "checks": checks,
            "memory_counts": counts, "conversation_count": conversations}
