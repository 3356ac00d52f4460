"""Simulated use of an existing sample agent: a day of changes, or a steady writer.

All changes go through ordinary SQL in short IMMEDIATE transactions with a
busy timeout, so triggers keep the FTS tables in sync and the database may be
open in other processes (an agent, a backup) at the same time.

Invariant kept for concurrent-snapshot tests: in every committed state,
``count(messages) == messages_at_create + writes`` and
``count(episodic_memory) == episodic_at_create + writes`` (rows of
``agent_stats``). ``write_transactions`` bumps ``writes``; ``mutate_agent``
moves the ``*_at_create`` baselines in the same transactions as its own
inserts and deletes.
"""
from __future__ import annotations

import math
import random
import sqlite3
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

from . import text as t
from .files import DB_NAME
from .generate import ROWS_PER_SCALE
from .rows import ROW_BUILDERS, Owner, episodic_row, insert_rows, message_row, row_bytes
from .schema import EMBEDDING_COLUMNS, MEMORY_TABLES

BUSY_TIMEOUT_SECONDS = 60.0
_TRANSACTION_BYTES = 8_000_000
"""Insert transactions stay around this size, like an agent's busiest turns."""
_REEMBED_PROBABILITY = 0.3
_BASELINES = {"messages": "messages_at_create", "episodic_memory": "episodic_at_create"}
_EDITED_TEXT = {
    "episodic_memory": "details",
    "semantic_memory": "details",
    "procedural_memory": "summary",
    "resource_memory": "content",
    "knowledge_vault": "caption",
}


@dataclass(frozen=True)
class MutationStats:
    inserted: dict[str, int]
    updated: dict[str, int]
    deleted: dict[str, int]
    bytes_before: int
    bytes_after: int

    def as_dict(self) -> dict:
        return asdict(self)


def connect(db_path: str | Path) -> sqlite3.Connection:
    """Autocommit connection with a busy timeout; transactions are explicit."""
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"no agent database at {path}")
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE takes the write lock up front, so waiting uses the busy timeout."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def mutate_agent(directory: str | Path, fraction: float = 0.01, seed: int | None = None) -> MutationStats:
    """Apply "a day of use": new rows worth ``fraction`` of the database size,
    about as many updates of random existing memories, and a few deletions."""
    if not (isinstance(fraction, (int, float)) and math.isfinite(fraction) and fraction > 0):
        raise ValueError(f"fraction must be a positive number, got {fraction!r}")
    rng = random.Random(seed)
    conn = connect(Path(directory) / DB_NAME)
    try:
        owner = Owner.load(conn)
        before = _logical_bytes(conn)
        day = _latest_time(conn) + timedelta(days=1)
        inserted = _insert_new_rows(conn, rng, owner, fraction * before, day)
        new_memories = sum(n for table, n in inserted.items() if table in MEMORY_TABLES)
        updated = _update_memories(conn, rng, owner, new_memories, day)
        deleted = _delete_rows(conn, rng, max(1, new_memories // 10), inserted["messages"] // 20)
        return MutationStats(dict(inserted), dict(updated), dict(deleted), before, _logical_bytes(conn))
    finally:
        conn.close()


def write_transactions(db_path: str | Path, count: int, seed: int | None = None) -> int:
    """Commit ``count`` small transactions (one message, one episodic memory, writes += 1)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = random.Random(seed)
    conn = connect(db_path)
    try:
        owner = Owner.load(conn)
        moment = _latest_time(conn)
        for _ in range(count):
            moment += timedelta(seconds=rng.uniform(1, 30))
            message, episode = message_row(rng, owner, moment), episodic_row(rng, owner, moment)
            with transaction(conn):
                insert_rows(conn, "messages", [message])
                insert_rows(conn, "episodic_memory", [episode])
                conn.execute("UPDATE agent_stats SET value = value + 1 WHERE name = 'writes'")
        return count
    finally:
        conn.close()


def check_write_invariant(db_path: str | Path) -> bool:
    """True if the row counts match agent_stats, read in one snapshot (read-only)."""
    conn = sqlite3.connect(Path(db_path).resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        stats = dict(conn.execute("SELECT name, value FROM agent_stats"))
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        episodes = conn.execute("SELECT count(*) FROM episodic_memory").fetchone()[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    writes = stats["writes"]
    return (messages == stats["messages_at_create"] + writes
            and episodes == stats["episodic_at_create"] + writes)


def _logical_bytes(conn: sqlite3.Connection) -> int:
    """Database size as SQLite sees it (committed pages, wherever they live)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    return pages * conn.execute("PRAGMA page_size").fetchone()[0]


def _latest_time(conn: sqlite3.Connection) -> datetime:
    """Newest message time (indexed), so simulated activity continues the history."""
    latest = conn.execute("SELECT max(created_at) FROM messages").fetchone()[0]
    return t.parse_db_time(latest) if latest else t.HISTORY_START


def _adjust_baseline(conn: sqlite3.Connection, table: str, delta: int) -> None:
    if table in _BASELINES and delta:
        conn.execute("UPDATE agent_stats SET value = value + ? WHERE name = ?", (delta, _BASELINES[table]))


def _insert_new_rows(conn: sqlite3.Connection, rng: random.Random, owner: Owner,
                     budget: float, day: datetime) -> Counter:
    """New rows in the creation mix of tables until their size reaches ``budget``."""
    tables, weights = list(ROWS_PER_SCALE), list(ROWS_PER_SCALE.values())
    inserted: Counter = Counter({table: 0 for table in tables})
    pending: dict[str, list[dict]] = {}
    total = pending_bytes = 0
    moment = day
    while total < budget:
        table = rng.choices(tables, weights)[0]
        moment += timedelta(seconds=rng.uniform(5, 90))
        row = ROW_BUILDERS[table](rng, owner, moment)
        pending.setdefault(table, []).append(row)
        size = row_bytes(row)
        total, pending_bytes = total + size, pending_bytes + size
        if pending_bytes >= _TRANSACTION_BYTES or total >= budget:
            with transaction(conn):
                for name, rows in pending.items():
                    insert_rows(conn, name, rows)
                    _adjust_baseline(conn, name, len(rows))
                    inserted[name] += len(rows)
            pending, pending_bytes = {}, 0
    return inserted


def _pick(conn: sqlite3.Connection, rng: random.Random, tables: tuple[str, ...], count: int) -> list[tuple[str, int]]:
    """Uniform sample of rows over whole tables, as (table, rowid)."""
    pool = [(table, rowid) for table in tables
            for (rowid,) in conn.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
    return rng.sample(pool, min(count, len(pool)))


def _update_memories(conn: sqlite3.Connection, rng: random.Random, owner: Owner,
                     count: int, day: datetime) -> Counter:
    """Touch metadata, append text and sometimes re-embed random memories; edit core memory."""
    updated: Counter = Counter({table: 0 for table in (*MEMORY_TABLES, "block")})
    moment = day + timedelta(hours=14)
    targets = _pick(conn, rng, MEMORY_TABLES, count)
    for start in range(0, len(targets), 200):
        with transaction(conn):
            for table, rowid in targets[start:start + 200]:
                moment += timedelta(seconds=rng.uniform(1, 30))
                _update_memory(conn, rng, owner, table, rowid, moment)
                updated[table] += 1
    with transaction(conn):
        conn.execute(
            'UPDATE block SET value = substr(value, 1, "limit" - 400) || ? , updated_at = ? '
            "WHERE label = 'human'", (" " + t.sentence(rng), t.db_time(moment)))
        updated["block"] += conn.execute("SELECT changes()").fetchone()[0]
    return updated


def _update_memory(conn: sqlite3.Connection, rng: random.Random, owner: Owner,
                   table: str, rowid: int, moment: datetime) -> None:
    text_column = _EDITED_TEXT[table]
    assignments = [
        "last_modify = ?", "updated_at = ?", "_last_updated_by_id = ?",
        "metadata_ = json_set(coalesce(metadata_, '{}'), '$.access_count', "
        "coalesce(json_extract(metadata_, '$.access_count'), 0) + 1, '$.last_accessed', ?)",
        f"{text_column} = {text_column} || ' ' || ?",
    ]
    values: list = [t.to_json({"timestamp": t.iso_utc(moment), "operation": "updated"}),
                    t.db_time(moment), owner.user_id, t.iso_utc(moment), t.sentence(rng)]
    if rng.random() < _REEMBED_PROBABILITY:
        assignments.append(f"{rng.choice(EMBEDDING_COLUMNS[table])} = ?")
        values.append(t.embedding(rng))
    conn.execute(f"UPDATE {table} SET {', '.join(assignments)} WHERE rowid = ?", (*values, rowid))


def _delete_rows(conn: sqlite3.Connection, rng: random.Random, memories: int, messages: int) -> Counter:
    """Forget a few random memories and messages (FTS rows go with them via triggers)."""
    deleted: Counter = Counter({table: 0 for table in (*MEMORY_TABLES, "messages")})
    targets = _pick(conn, rng, MEMORY_TABLES, memories) + _pick(conn, rng, ("messages",), messages)
    with transaction(conn):
        for table, rowid in targets:
            conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
            deleted[table] += 1
        for table in ("messages", "episodic_memory"):
            _adjust_baseline(conn, table, -deleted[table])
    return deleted
