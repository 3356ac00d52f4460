"""diff_tables: the rows a restore would remove and add, counted exactly.

Checked against a plain set difference of whole rows (rowid included), the
definition the dry run reports, on the changes that are easy to miss: a value
of another type that compares equal (1 and 1.0), NULL against a value, a
changed large text, rows only on one side, a WITHOUT ROWID table and a column
that only one side has.
"""
from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest

from snapstore.restore.sqlite_target import attach_snapshot, diff_tables

SCHEMA = """
CREATE TABLE memory (id TEXT PRIMARY KEY, n, body TEXT, emb BLOB);
CREATE TABLE tags (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
CREATE TABLE only_here (x);
"""


def build(path, rows, tags, extra_column=False):
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    if extra_column:
        conn.execute("ALTER TABLE memory ADD COLUMN note TEXT")
    conn.executemany("INSERT INTO memory (rowid, id, n, body, emb) VALUES (?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO tags VALUES (?, ?)", tags)
    conn.commit()
    conn.close()


def set_difference(conn, a, b, table, cols):
    col_sql = ", ".join(cols)
    return conn.execute(f"SELECT count(*) FROM (SELECT {col_sql} FROM {a}.{table} EXCEPT "
                        f"SELECT {col_sql} FROM {b}.{table})").fetchone()[0]


def test_diff_counts_match_a_set_difference_of_whole_rows(tmp_path):
    big = "x" * 50_000
    live_rows = [(1, "a", 1, big, b"\x01"), (2, "b", 2, "same", None), (3, "c", None, "t", b"\x02"),
                 (4, "d", 4, big + "!", b"\x03"), (5, "gone", 5, "t", None), (7, "e", 7, "t", None)]
    snap_rows = [(1, "a", 1, big, b"\x01"), (2, "b", 2.0, "same", None), (3, "c", 3, "t", b"\x02"),
                 (4, "d", 4, big + "?", b"\x03"), (6, "new", 6, "t", None), (7, "e", 7, "t", b"")]
    live, snap = tmp_path / "live.db", tmp_path / "snap.db"
    build(live, live_rows, [("k1", "v1"), ("k2", "v2")], extra_column=True)
    build(snap, snap_rows, [("k1", "v1"), ("k2", "changed"), ("k3", "v3")])
    conn = attach_snapshot(live, snap)
    try:
        got = diff_tables(conn, ["memory", "tags", "only_here", "absent"])
        # rowid 2 (2 vs 2.0), 3 (NULL vs 3), 4 (large text), 7 (NULL vs empty blob) changed;
        # 5 only in live, 6 only in the snapshot; the live-only column is not compared.
        assert got["memory"] == {"deleted": 5, "inserted": 5}
        cols = ["rowid", "id", "n", "typeof(n)", "body", "emb", "typeof(emb)"]
        assert got["memory"] == {"deleted": set_difference(conn, "main", "snap", "memory", cols),
                                 "inserted": set_difference(conn, "snap", "main", "memory", cols)}
        assert got["tags"] == {"deleted": 1, "inserted": 2}
        assert got["only_here"] == {"deleted": 0, "inserted": 0}
        assert "absent" not in got
    finally:
        conn.close()


def test_identical_tables_have_no_changes(tmp_path):
    rows = [(i, f"id{i}", i, "body" * i, bytes([i])) for i in range(1, 50)]
    live, snap = tmp_path / "live.db", tmp_path / "snap.db"
    build(live, rows, [("k", "v")])
    build(snap, rows, [("k", "v")])
    conn = attach_snapshot(live, snap)
    try:
        assert diff_tables(conn, ["memory", "tags"]) == {"memory": {"deleted": 0, "inserted": 0},
                                                         "tags": {"deleted": 0, "inserted": 0}}
    finally:
        conn.close()


def diff_of(tmp_path, create, live_rows, snap_rows, table="t"):
    case = Path(tempfile.mkdtemp(dir=tmp_path))
    live, snap = case / "live.db", case / "snap.db"
    for path, rows in ((live, live_rows), (snap, snap_rows)):
        conn = sqlite3.connect(path)
        conn.execute(create)
        ncols = len(conn.execute(f"SELECT * FROM {table} LIMIT 0").description)
        conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * ncols)})", rows)
        conn.commit()
        conn.close()
    conn = attach_snapshot(live, snap)
    try:
        return diff_tables(conn, [table])[table]
    finally:
        conn.close()


def test_a_column_named_rowid_does_not_stand_in_for_the_rowid(tmp_path):
    rows = [(None, "a"), ("k", "b"), ("k", "c")]
    assert diff_of(tmp_path, "CREATE TABLE t (rowid TEXT, v TEXT)", rows, rows) == {"deleted": 0, "inserted": 0}
    changed = [(None, "a"), ("k", "b"), ("k", "C")]
    assert diff_of(tmp_path, "CREATE TABLE t (rowid TEXT, v TEXT)", rows, changed) == {"deleted": 1, "inserted": 1}


@pytest.mark.parametrize("create", ["CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT) WITHOUT  ROWID",
                                    "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT) WITHOUT\nROWID"])
def test_without_rowid_tables_however_spelled(tmp_path, create):
    assert diff_of(tmp_path, create, [("a", "1"), ("b", "2")], [("a", "1"), ("b", "3"), ("c", "4")]) == \
        {"deleted": 1, "inserted": 2}


def test_a_default_mentioning_without_rowid_is_an_ordinary_table(tmp_path):
    create = "CREATE TABLE t (v TEXT DEFAULT 'without rowid')"
    # same values, other rowids: a restore would move every row
    live, snap = tmp_path / "live.db", tmp_path / "snap.db"
    for path, first in ((live, 1), (snap, 10)):
        conn = sqlite3.connect(path)
        conn.execute(create)
        conn.executemany("INSERT INTO t (rowid, v) VALUES (?, ?)", [(first, "x"), (first + 1, "y")])
        conn.commit()
        conn.close()
    conn = attach_snapshot(live, snap)
    try:
        assert diff_tables(conn, ["t"])["t"] == {"deleted": 2, "inserted": 2}
    finally:
        conn.close()


def test_a_change_of_case_in_a_nocase_column_is_a_change(tmp_path):
    assert diff_of(tmp_path, "CREATE TABLE t (v TEXT COLLATE NOCASE)", [("A",)], [("a",)]) == \
        {"deleted": 1, "inserted": 1}


def test_tables_with_more_columns_than_one_expression_can_compare(tmp_path):
    n = 600
    create = f"CREATE TABLE t ({', '.join(f'c{i}' for i in range(n))})"
    row = tuple(range(n))
    other = row[:-1] + (-1,)
    assert diff_of(tmp_path, create, [row, row], [row, row]) == {"deleted": 0, "inserted": 0}
    assert diff_of(tmp_path, create, [row, row], [row, other]) == {"deleted": 1, "inserted": 1}
