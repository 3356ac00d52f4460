"""Comparing two SQLite databases the way the restore and export tests need: schema, every
table row for row with rowids, FTS answers."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from snapstore.sample_agent import FTS_COLUMNS
from snapstore.sqlite_uri import sqlite_uri


def ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True)


def all_tables(conn: sqlite3.Connection) -> list[str]:
    """Every table, FTS virtual tables and their shadow tables included."""
    return [n for (n,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def table_rows(conn: sqlite3.Connection, table: str) -> list[tuple]:
    """Rows in rowid order with their rowid; WITHOUT ROWID shadow tables in key order."""
    try:
        return conn.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid').fetchall()
    except sqlite3.OperationalError:
        ncols = len(conn.execute(f'SELECT * FROM "{table}" LIMIT 0').description)
        order = ", ".join(str(i) for i in range(1, ncols + 1))
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()


def schema(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def fts_words(conn: sqlite3.Connection, table: str, column: str) -> list[str]:
    """A few words taken from rows of ``table`` (first, middle, last), to search for."""
    values = [v for (v,) in conn.execute(f'SELECT "{column}" FROM "{table}" ORDER BY rowid') if v]
    words = []
    for value in (values[0], values[len(values) // 2], values[-1]):
        candidates = sorted(set(re.findall(r"[A-Za-z]{5,}", value)), key=lambda w: (-len(w), w))
        if candidates:
            words.append(candidates[0])
    return words


def fts_search(conn: sqlite3.Connection, fts: str, word: str) -> list[int]:
    return [r for (r,) in conn.execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY rowid",
                                       (f'"{word}"',))]


def assert_same_database(expected_db: Path, actual_db: Path) -> None:
    """Schema, every table (shadow tables too) row for row with rowids, FTS answers and checks."""
    a, b = ro(expected_db), ro(actual_db)
    try:
        assert schema(b) == schema(a)
        tables = all_tables(a)
        assert all_tables(b) == tables
        for table in tables:
            assert table_rows(b, table) == table_rows(a, table), f"table {table} differs"
        searched = 0
        for table, cols in FTS_COLUMNS.items():
            fts = f"{table}_fts"
            for word in fts_words(a, table, cols[0]):
                expected = fts_search(a, fts, word)
                assert expected, f"{word!r} must be found in {fts} of the source"
                assert fts_search(b, fts, word) == expected, f"{fts} MATCH {word!r}"
                searched += 1
        assert searched >= len(FTS_COLUMNS)
        assert b.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        a.close()
        b.close()
    rw = sqlite3.connect(actual_db, isolation_level=None)
    try:
        for table in FTS_COLUMNS:
            fts = f"{table}_fts"
            rw.execute(f"INSERT INTO {fts}({fts}, rank) VALUES('integrity-check', 1)")
    finally:
        rw.close()


def check_database(path: Path) -> None:
    """PRAGMA integrity_check and FTS5's integrity check (rank form) of every FTS table."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        for table in FTS_COLUMNS:
            fts = f"{table}_fts"
            conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES('integrity-check', 1)")
    finally:
        conn.close()


def copy_db(src_path: str | Path, out: Path) -> Path:
    """A consistent copy through SQLite's backup API (the reference to compare with)."""
    src, dst = ro(Path(src_path)), sqlite3.connect(out)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return out
